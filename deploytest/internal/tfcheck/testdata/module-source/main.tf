module "child" {
  source = "../no-such-module"
  name   = "x"
}

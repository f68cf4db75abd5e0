module "child" {
  source = "../child"
  size   = 2
}

module "child" {
  source = "../child"
  name   = "x"
  colour = "blue"
}

# Target groups and their targets: tg-web on the instances' primary addresses (web1 =
# 192.0.2.11, web2 = 192.0.2.12), every other group on secondary addresses of its own.

resource "aws_lb_target_group" "admin" {
  name        = "tg-admin"
  port        = 80
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = "vpc-3ac0fb5f"

  health_check {
    path = "/"
  }
}

resource "aws_lb_target_group" "canary" {
  name        = "tg-canary"
  port        = 80
  protocol    = "HTTP"
  target_type = "ip"
}

resource "aws_lb_target_group" "write" {
  name        = "tg-write"
  port        = 80
  protocol    = "HTTP"
  target_type = "ip"
}

resource "aws_lb_target_group" "beta" {
  name        = "tg-beta"
  port        = 80
  protocol    = "HTTP"
  target_type = "ip"
}

resource "aws_lb_target_group" "office" {
  name        = "tg-office"
  port        = 80
  protocol    = "HTTP"
  target_type = "ip"
}

resource "aws_lb_target_group" "api" {
  name        = "tg-api"
  port        = 80
  protocol    = "HTTP"
  target_type = "ip"
}

resource "aws_lb_target_group" "web" {
  name                          = "tg-web"
  port                          = 80
  protocol                      = "HTTP"
  target_type                   = "ip"
  load_balancing_algorithm_type = "round_robin"
}

resource "aws_lb_target_group_attachment" "admin_web2" {
  target_group_arn = aws_lb_target_group.admin.arn
  target_id        = local.web2_admin
  port             = 80
}

resource "aws_lb_target_group_attachment" "canary_web1" {
  target_group_arn = aws_lb_target_group.canary.arn
  target_id        = local.web1_canary
  port             = 80
}

resource "aws_lb_target_group_attachment" "write_web1" {
  target_group_arn = aws_lb_target_group.write.arn
  target_id        = local.web1_write
  port             = 80
}

resource "aws_lb_target_group_attachment" "beta_web2" {
  target_group_arn = aws_lb_target_group.beta.arn
  target_id        = local.web2_beta
  port             = 80
}

resource "aws_lb_target_group_attachment" "office_web1" {
  target_group_arn = aws_lb_target_group.office.arn
  target_id        = local.web1_office
  port             = 80
}

resource "aws_lb_target_group_attachment" "api_web1" {
  target_group_arn = aws_lb_target_group.api.arn
  target_id        = local.web1_api
  port             = 80
}

resource "aws_lb_target_group_attachment" "api_web2" {
  target_group_arn = aws_lb_target_group.api.arn
  target_id        = local.web2_api
  port             = 80
}

resource "aws_lb_target_group_attachment" "web_web1" {
  target_group_arn = aws_lb_target_group.web.arn
  target_id        = local.web1
  port             = 80
}

resource "aws_lb_target_group_attachment" "web_web2" {
  target_group_arn = aws_lb_target_group.web.arn
  target_id        = local.web2
  port             = 80
}

# The lab's ALB (osilab/lab/configs.py: ALB_RULES, ALB_TARGET_GROUPS) as Terraform.
# Six rules, one per AWS condition type, on an HTTP and an HTTPS listener; tg-web is
# the default action of both.

variable "http_port" {
  type    = number
  default = 80
}

locals {
  web1        = "192.0.2.11"
  web2        = "192.0.2.12"
  # secondary addresses of the instances, registered as ip targets (one per group)
  web1_api    = "192.0.2.13"
  web1_canary = "192.0.2.15"
  web1_write  = "192.0.2.17"
  web1_office = "192.0.2.19"
  web2_api    = "192.0.2.14"
  web2_admin  = "192.0.2.16"
  web2_beta   = "192.0.2.18"
}

resource "aws_lb" "lab" {
  name               = "lab-alb"
  load_balancer_type = "application"
  internal           = false
  subnets            = ["subnet-8360a9e7", "subnet-b7d581c0"]
  security_groups    = ["sg-5943793c"]
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.lab.arn
  port              = var.http_port
  protocol          = "HTTP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.web.arn
  }
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.lab.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = "arn:aws:acm:eu-west-1:123456789012:certificate/3dcb0a41-bd72-4774-9ad9-756919c40557"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.web.arn
  }
}

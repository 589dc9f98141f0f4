# The listener rules, in priority order (first match wins), on both listeners.

resource "aws_lb_listener_rule" "http_host" {
  listener_arn = aws_lb_listener.http.arn
  priority     = 1

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.admin.arn
  }

  condition {
    host_header {
      values = ["admin.example.com"]
    }
  }

  tags = {
    Rule = "host"
  }
}

resource "aws_lb_listener_rule" "http_canary" {
  listener_arn = aws_lb_listener.http.arn
  priority     = 2

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.canary.arn
  }

  condition {
    http_header {
      http_header_name = "X-Canary"
      values           = ["1"]
    }
  }

  tags = {
    Rule = "canary"
  }
}

resource "aws_lb_listener_rule" "http_write" {
  listener_arn = aws_lb_listener.http.arn
  priority     = 3

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.write.arn
  }

  condition {
    http_request_method {
      values = ["DELETE", "PUT"]
    }
  }

  tags = {
    Rule = "write"
  }
}

resource "aws_lb_listener_rule" "http_beta" {
  listener_arn = aws_lb_listener.http.arn
  priority     = 4

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.beta.arn
  }

  condition {
    query_string {
      key   = "version"
      value = "beta"
    }
  }

  tags = {
    Rule = "beta"
  }
}

resource "aws_lb_listener_rule" "http_office" {
  listener_arn = aws_lb_listener.http.arn
  priority     = 5

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.office.arn
  }

  condition {
    source_ip {
      values = ["198.51.100.8/32"]
    }
  }

  tags = {
    Rule = "office"
  }
}

resource "aws_lb_listener_rule" "http_api" {
  listener_arn = aws_lb_listener.http.arn
  priority     = 6

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api.arn
  }

  condition {
    path_pattern {
      values = ["/api/*"]
    }
  }

  tags = {
    Rule = "api"
  }
}

resource "aws_lb_listener_rule" "https_host" {
  listener_arn = aws_lb_listener.https.arn
  priority     = 1

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.admin.arn
  }

  condition {
    host_header {
      values = ["admin.example.com"]
    }
  }

  tags = {
    Rule = "host"
  }
}

resource "aws_lb_listener_rule" "https_canary" {
  listener_arn = aws_lb_listener.https.arn
  priority     = 2

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.canary.arn
  }

  condition {
    http_header {
      http_header_name = "X-Canary"
      values           = ["1"]
    }
  }

  tags = {
    Rule = "canary"
  }
}

resource "aws_lb_listener_rule" "https_write" {
  listener_arn = aws_lb_listener.https.arn
  priority     = 3

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.write.arn
  }

  condition {
    http_request_method {
      values = ["DELETE", "PUT"]
    }
  }

  tags = {
    Rule = "write"
  }
}

resource "aws_lb_listener_rule" "https_beta" {
  listener_arn = aws_lb_listener.https.arn
  priority     = 4

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.beta.arn
  }

  condition {
    query_string {
      key   = "version"
      value = "beta"
    }
  }

  tags = {
    Rule = "beta"
  }
}

resource "aws_lb_listener_rule" "https_office" {
  listener_arn = aws_lb_listener.https.arn
  priority     = 5

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.office.arn
  }

  condition {
    source_ip {
      values = ["198.51.100.8/32"]
    }
  }

  tags = {
    Rule = "office"
  }
}

resource "aws_lb_listener_rule" "https_api" {
  listener_arn = aws_lb_listener.https.arn
  priority     = 6

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api.arn
  }

  condition {
    path_pattern {
      values = ["/api/*"]
    }
  }

  tags = {
    Rule = "api"
  }
}

#!/usr/bin/env python3
"""Render terraform/aws/user_data.sh.tftpl the way Terraform's templatefile()
does, for the subset of the template language that file may use:

  ${name}  a plain variable name: replaced by the variable's value
  $${      a literal "${"
  %%{      a literal "%{"

Any other interpolation (${ followed by an expression) or any directive
(%{ if }, %{ for }) is rejected, and so is a variable the template uses but
the vars file lacks, as templatefile() rejects it. Values are strings or
numbers; a whole number is written without a decimal point, like Terraform.

Usage: render_template.py TEMPLATE VARS.json > OUTPUT
"""
import json
import re
import sys

TOKEN = re.compile(r"\$\$\{|%%\{|\$\{([^}]*)\}|%\{")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def format_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(int(value)) if float(value).is_integer() else repr(value)
    if isinstance(value, str):
        return value
    raise SystemExit("render_template: unsupported value type %s" % type(value).__name__)


def render(template, variables):
    def replace(match):
        token = match.group(0)
        if token == "$${":
            return "${"
        if token == "%%{":
            return "%{"
        if token == "%{":
            line = template.count("\n", 0, match.start()) + 1
            raise SystemExit("render_template: line %d: template directives are not supported" % line)
        name = match.group(1).strip()
        if not NAME.match(name):
            line = template.count("\n", 0, match.start()) + 1
            raise SystemExit("render_template: line %d: only plain variable names are supported, got ${%s}"
                             % (line, name))
        if name not in variables:
            raise SystemExit("render_template: vars do not contain key %r" % name)
        return format_value(variables[name])

    return TOKEN.sub(replace, template)


def main():
    if len(sys.argv) != 3:
        raise SystemExit("usage: render_template.py TEMPLATE VARS.json")
    with open(sys.argv[1]) as f:
        template = f.read()
    with open(sys.argv[2]) as f:
        variables = json.load(f)
    sys.stdout.write(render(template, variables))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Runs the `python` code blocks of a Markdown page, in order, as one program (docs/clients.md is one)."""
import re
import sys

if len(sys.argv) != 2:
    sys.exit("usage: run-client-doc.py PAGE.md")
page = open(sys.argv[1], encoding="utf-8").read()
blocks = re.findall(r"^```python\n(.*?)^```$", page, flags=re.S | re.M)
if not blocks:
    sys.exit(f"{sys.argv[1]} has no python blocks")
source = "\n".join(blocks)
exec(compile(source, f"{sys.argv[1]} (its python blocks)", "exec"), {"__name__": "__main__"})

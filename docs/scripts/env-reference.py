#!/usr/bin/env python3
"""Regenerates the configuration reference of docs/operations.md from the service binaries.

    cargo build --workspace            # once, so target/debug/<name>-service exist
    python3 docs/scripts/env-reference.py > /tmp/env.md   # then paste between the markers

Each binary's `env` subcommand prints every variable its config structs read:
`NAME (default: x)` or `NAME (secret)`, then an indented help line.
"""
import re, subprocess, sys, os

SERVICES = ["gateway", "auth", "product", "order-payment", "appointment",
            "content", "customer", "notification", "analytics"]
BIN = os.environ.get("BIN_DIR", "target/debug")
HEAD = re.compile(r"^([A-Z0-9_]+)(?: \((?:default: (.*)|(secret))\))?$")

def read(service):
    out = subprocess.run([f"{BIN}/{service}-service", "env"], capture_output=True,
                         text=True, check=True).stdout
    rows, cur = [], None
    for line in out.splitlines():
        if line.startswith("    ") and cur:
            cur["help"] = (cur["help"] + " " + line.strip()).strip()
            continue
        m = HEAD.match(line.strip())
        if m:
            cur = {"name": m[1], "default": m[2] or "", "secret": bool(m[3]), "help": ""}
            rows.append(cur)
    return rows

def esc(s):
    return s.replace("|", "\\|")

def table(rows, defaults_of=None):
    lines = ["| variable | default | secret | meaning |", "|---|---|---|---|"]
    for r in rows:
        d = defaults_of(r) if defaults_of else (f"`{esc(r['default'])}`" if r["default"] else "—")
        lines.append(f"| `{r['name']}` | {d} | {'yes' if r['secret'] else ''} | {esc(r['help'])} |")
    return "\n".join(lines)

data = {s: read(s) for s in SERVICES}
db_services = SERVICES[1:]
common_names = [r["name"] for r in data["auth"]
                if all(any(x["name"] == r["name"] for x in data[s]) for s in db_services)]
per_service_default = {"PORT", "REDIS_KEY_PREFIX"}

def common_default(r):
    if r["name"] == "PORT":
        return "3000 gateway, 3001–3008 in table order"
    if r["name"] == "REDIS_KEY_PREFIX":
        return "the service name"
    return f"`{esc(r['default'])}`" if r["default"] else "—"

out = []
out.append("### Common to every service\n")
out.append("Read by all nine binaries (the gateway reads none of the `DATABASE_*`/`RUN_MIGRATIONS` "
           "variables: it has no database; it reads the broker variables but connects to no broker). "
           "A secret has a local-development default unless `ENVIRONMENT=production`, where it must be "
           "set (except `INTERNAL_TOKEN_PRIVATE_KEY`, needed only by services that mint tokens).\n")
out.append(table([r for r in data["auth"] if r["name"] in common_names], common_default))
for s in SERVICES:
    own = [r for r in data[s] if r["name"] not in common_names]
    out.append(f"\n### {s}\n")
    if own:
        out.append(table(own))
    else:
        out.append("Only the common variables.")
print("\n".join(out))

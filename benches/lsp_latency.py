#!/usr/bin/env python3
"""How long `nurture lsp` takes to publish a changed file's diagnostics.

Builds a program of about N lines (the examples' schema, then copies of the
lead-nurturing workflow under new names, one file per copy), opens one
file, then makes K edits to it (a comment changed each time) and measures,
for each, the time from sending `didChange` to receiving that file's
`publishDiagnostics`. Prints the median and the extremes.

    cargo build --release
    python3 benches/lsp_latency.py [LINES] [EDITS]     (default 10000 21)
"""
import json, os, re, statistics, subprocess, sys, tempfile, time

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
lines = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
edits = int(sys.argv[2]) if len(sys.argv) > 2 else 21
binary = os.path.join(root, "target", "release", "nurture")

work = tempfile.mkdtemp()
schema = open(os.path.join(root, "examples", "00_schema.flow")).read()
open(os.path.join(work, "00_schema.flow"), "w").write(schema)
wf = open(os.path.join(root, "examples", "lead_nurturing.flow")).read()
total, n = schema.count("\n"), 0
while total < lines:
    text = re.sub(r"workflow (\w+)", lambda m: f"workflow {m.group(1)}_{n}", wf)
    open(os.path.join(work, f"w{n:04}.flow"), "w").write(text)
    total += text.count("\n")
    n += 1
target = os.path.join(work, "w0000.flow")
uri = "file://" + target
text = open(target).read()

p = subprocess.Popen([binary, "lsp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)

def send(msg):
    body = json.dumps(msg).encode()
    p.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    p.stdin.flush()

def receive():
    length = 0
    while True:
        line = p.stdout.readline().strip()
        if not line:
            break
        if line.startswith(b"Content-Length:"):
            length = int(line.split(b":")[1])
    return json.loads(p.stdout.read(length))

def until_published():
    while True:
        m = receive()
        if m.get("method") == "textDocument/publishDiagnostics" and m["params"]["uri"] == uri:
            return

send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"processId": None, "rootUri": None, "capabilities": {}}})
receive()
send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {"uri": uri, "languageId": "flow", "version": 1, "text": text}}})
until_published()
times = []
for k in range(edits):
    changed = text.replace("// Seed 001", f"// Seed 001 (edit {k})", 1)
    t0 = time.perf_counter()
    send({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {"textDocument": {"uri": uri, "version": k + 2}, "contentChanges": [{"text": changed}]}})
    until_published()
    times.append((time.perf_counter() - t0) * 1000)
send({"jsonrpc": "2.0", "id": 2, "method": "shutdown", "params": None})
send({"jsonrpc": "2.0", "method": "exit", "params": None})
p.wait(timeout=10)
print(f"{total} lines in {n + 1} files; {edits} edits: median {statistics.median(times):.1f} ms, min {min(times):.1f} ms, max {max(times):.1f} ms")

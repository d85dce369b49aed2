#!/usr/bin/env python3
"""How long a `jepa ui` page takes to build and draw in headless Chromium (through chromedriver's
WebDriver protocol; Python's standard library only). The run page records it in
document.body.dataset.drawMs.

    jepa ui --db DB --port 18767 &
    bench/ui_draw_time.py http://127.0.0.1:18767/runs/1 "" "?points=20000"

Each query suffix after the URL is opened 5 times; prints the sorted times and the median.
"""
import json, subprocess, time, urllib.request, sys
port = 9517
drv = subprocess.Popen(["/usr/bin/chromedriver", f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
def call(method, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req, timeout=120))
for _ in range(50):
    try: call("GET", "/status"); break
    except Exception: time.sleep(0.2)
caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {"binary": "/usr/bin/chromium",
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1000"]}}}}
sid = call("POST", "/session", caps)["value"]["sessionId"]
try:
    for q in sys.argv[2:]:
        res = []
        for i in range(5):
            call("POST", f"/session/{sid}/url", {"url": sys.argv[1] + q})
            for _ in range(300):
                v = call("POST", f"/session/{sid}/execute/sync", {"script": "return document.body.dataset.drawMs || null;", "args": []})["value"]
                if v: break
                time.sleep(0.05)
            res.append(float(v))
        res.sort()
        print(q or "(default)", "draw ms:", res, "median", res[2])
finally:
    call("DELETE", f"/session/{sid}")
    drv.terminate()

"""Contract fuzzing of omi-server with schemathesis, plus a cross-user isolation check.

Run through scripts/fuzz.sh, which installs the pinned schemathesis into .venv and builds the
binary. Steps:

1. Start `omi-server serve` on a fresh SQLite file (rate limits off) with two users, A and B.
2. Seed B's objects through the API (every resource this build documents) and snapshot what B
   sees: each object by id and each list.
3. Run schemathesis with A's developer key over every route but key management, then with A's
   account token over key management, with every check (`--checks all`: no 5xx, responses and
   statuses as documented, schema-valid requests accepted and schema-violating ones refused,
   deleted objects gone, authentication enforced) and the stateful phase. The exceptions, one
   check of one operation each, are in scripts/schemathesis.toml; scripts/fuzz_hooks.py keeps
   generated Idempotency-Key values from colliding. The seed is fixed, so a failure reproduces.
4. Probe every route with an id in its path with B's ids and A's credentials: each answers 404.
5. Check that B's snapshot is unchanged and that no response A received contains any B id.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

SEED = int(os.environ.get("FUZZ_SEED", "20251123"))
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "30"))
# Per schemathesis run. The coverage phase (every boundary of every parameter) takes about
# 100 s on two busy cores and the fuzzing phase about 50 s at 30 examples per operation, so the
# whole script stays around three minutes.
RUN_TIMEOUT_S = int(os.environ.get("FUZZ_RUN_TIMEOUT", "360"))
CHECKS = os.environ.get("FUZZ_CHECKS", "all")
ALL_SCOPES = ",".join(
    f"{resource}:{access}"
    for resource in ("conversations", "memories", "action_items", "goals", "webhooks")
    for access in ("read", "write")
) + ",ingest:write"

# For each resource with ids in its paths: the body of a valid PATCH, so that the probe with a
# foreign id reaches the ownership check instead of stopping at validation.
PATCH_BODIES = {
    "memories": {"content": "changed by another user"},
    "action-items": {"description": "changed by another user"},
    "conversations": {"title": "changed by another user"},
    "goals": {"title": "changed by another user"},
    "webhooks": {"active": False},
}


# Resources created one by one and in batches: (resource, path, one body, batch field, batch item).
SINGLE_AND_BATCH = [
    ("memories", "/v1/dev/user/memories", {"content": "B keeps bees in the garden"},
     "memories", {"content": "B fact number {i}"}),
    ("action-items", "/v1/dev/user/action-items", {"description": "B renews the lease"},
     "action_items", {"description": "B task {i}"}),
]


class Failed(Exception):
    pass


def cli(binary, database_url, *args):
    env = dict(os.environ, OMI_DATABASE_URL=database_url, OMI_LOG="warn")
    out = subprocess.run([binary, *args, "--json"], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise Failed(f"omi-server {' '.join(args)}: {out.stderr}")
    return json.loads(out.stdout)


def make_user(binary, database_url, name):
    user = cli(binary, database_url, "users", "create", name)
    key = cli(binary, database_url, "keys", "create", "--user", name, "--name", "all", "--scopes", ALL_SCOPES)
    return {"id": user["id"], "token": user["account_token"], "key": key["key"], "key_id": key["id"]}


class Server:
    """The real binary on 127.0.0.1:0, ready once it logs its address."""

    def __init__(self, binary, database_url, log_path):
        env = dict(
            os.environ,
            OMI_DATABASE_URL=database_url,
            OMI_LISTEN="127.0.0.1:0",
            OMI_LOG="warn,omi_server::app=info",
            OMI_RATE_LIMIT_PER_MINUTE="0",
            OMI_RATE_LIMIT_PER_DAY="0",
            OMI_FAILED_AUTH_PER_MINUTE="0",
            # Fuzzed subscriptions name arbitrary URLs: record deliveries, send none.
            OMI_WEBHOOKS="false",
        )
        env.pop("OMI_REDIS_URL", None)
        self.process = subprocess.Popen(
            [binary, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        self.log = open(log_path, "w")
        self.address = None
        ready = threading.Event()

        def drain():
            for line in self.process.stderr:
                self.log.write(line)
                self.log.flush()
                match = re.search(r"listening address=(\S+)", line)
                if match:
                    self.address = match.group(1)
                    ready.set()

        threading.Thread(target=drain, daemon=True).start()
        if not ready.wait(60):
            self.stop()
            raise Failed(f"the server did not start; see {log_path}")
        self.base_url = f"http://{self.address}"

    def stop(self):
        self.process.kill()
        self.process.wait()


def call(base_url, method, path, token=None, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base_url + path, data=data, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            # A few answers are not one JSON document (the NDJSON export, WAV audio): compared
            # as they are.
            try:
                return response.status, json.loads(raw) if raw else None
            except (json.JSONDecodeError, UnicodeDecodeError):
                return response.status, raw
    except urllib.error.HTTPError as error:
        text = error.read().decode()
        return error.code, json.loads(text) if text else None


def created(base_url, token, path, body):
    status, answer = call(base_url, "POST", path, token, body)
    if status != 200:
        raise Failed(f"seeding POST {path} answered {status}: {answer}")
    return answer


def seed_other_user(base_url, paths, user, binary, database_url):
    """Creates one of every object this build documents for `user`; returns ids by resource."""
    key = user["key"]
    ids = {"keys": [user["key_id"]]}
    ids["keys"].append(created(base_url, user["token"], "/v1/dev/keys", {"name": "second"})["id"])

    def has(path):
        return "post" in paths.get(path, {})

    for resource, path, single, field, item in SINGLE_AND_BATCH:
        if has(path):
            ids.setdefault(resource, []).append(created(base_url, key, path, single)["id"])
        if has(f"{path}/batch"):
            items = [{name: text.format(i=i) for name, text in item.items()} for i in range(3)]
            batch = created(base_url, key, f"{path}/batch", {field: items})
            ids.setdefault(resource, []).extend(one["id"] for one in batch[field])
    if has("/v1/dev/user/conversations"):
        text = (
            "B met the architect about the kitchen. I need to send the floor plan to Anna by "
            "Friday. We agreed to start the work in March."
        )
        ids["conversations"] = [created(base_url, key, "/v1/dev/user/conversations", {"text": text})["id"]]
        if "/v1/dev/user/daily-summaries/{summary_id}" in paths:
            # The day's summary, made at once by the command line (the scheduler waits for the
            # day to end); the user's timezone is UTC.
            today = time.strftime("%Y-%m-%d", time.gmtime())
            summary = cli(binary, database_url, "summaries", "generate", "--user", user["id"], "--date", today)
            ids["daily-summaries"] = [summary["id"]]
    if has("/v1/dev/user/goals"):
        goal = created(base_url, key, "/v1/dev/user/goals", {"title": "B runs a marathon", "target_value": 42})
        ids["goals"] = [goal["id"]]
    if has("/v1/dev/user/webhooks"):
        hook = created(
            base_url, key, "/v1/dev/user/webhooks",
            {"url": "https://hooks.example.net/b", "events": ["goal.updated"]},
        )
        ids["webhooks"] = [hook["id"]]
    return ids


def without_volatile(value):
    """Drops `last_used_at`: B's own snapshot requests update it."""
    if isinstance(value, dict):
        return {k: without_volatile(v) for k, v in value.items() if k != "last_used_at"}
    if isinstance(value, (list, tuple)):
        return [without_volatile(v) for v in value]
    return value


def snapshot(base_url, paths, user, ids):
    """What B sees: every list without path parameters, and every object by id."""
    seen = {}
    for path, item in sorted(paths.items()):
        if "get" in item and "{" not in path and path.startswith("/v1/dev/"):
            token = user["token"] if path.startswith("/v1/dev/keys") else user["key"]
            seen[path] = call(base_url, "GET", path, token)
    for resource, resource_ids in ids.items():
        if resource == "keys":
            continue
        for object_id in resource_ids:
            path = f"/v1/dev/user/{resource}/{object_id}"
            seen[path] = call(base_url, "GET", path, user["key"])
    return without_volatile(seen)


def schemathesis(base_url, token, report_dir, filters, label):
    here = Path(__file__).resolve().parent
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file", str(here / "schemathesis.toml"),
        "run", f"{base_url}/v1/openapi.json",
        "--header", f"Authorization: Bearer {token}",
        "--checks", CHECKS,
        "--phases", "examples,coverage,fuzzing,stateful",
        "--seed", str(SEED),
        "--max-examples", str(MAX_EXAMPLES),
        "--workers", "1",
        "--generation-database", "none",
        "--request-timeout", "20",
        "--no-color",
        "--report", "har", "--report-dir", str(report_dir),
        *filters,
    ]
    print(f"\n== schemathesis: {label} (seed {SEED}, {MAX_EXAMPLES} examples per operation)", flush=True)
    try:
        env = dict(os.environ, SCHEMATHESIS_HOOKS="fuzz_hooks",
                   PYTHONPATH=os.pathsep.join(filter(None, [str(here), os.environ.get("PYTHONPATH")])))
        outcome = subprocess.run(command, timeout=RUN_TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired:
        raise Failed(f"schemathesis ({label}) ran past {RUN_TIMEOUT_S} s")
    if outcome.returncode != 0:
        raise Failed(f"schemathesis ({label}) found failures (exit {outcome.returncode}); rerun with FUZZ_SEED={SEED}")


def probe_foreign_ids(base_url, paths, caller, owner_ids):
    """Every route with an id in its path, called by A with B's ids: always 404."""
    probes = 0
    for path, item in sorted(paths.items()):
        match = re.match(r"^/v1/dev/(?:user/)?([a-z-]+)/\{[^}]+\}", path)
        if not match:
            continue
        resource = match.group(1)
        if resource not in owner_ids:
            raise Failed(f"no object of another user to probe {path} with; extend seed_other_user")
        token = caller["token"] if resource == "keys" else caller["key"]
        for method in item:
            if method not in ("get", "patch", "delete", "post", "put"):
                continue
            for object_id in owner_ids[resource]:
                concrete = re.sub(r"\{[^}]+\}", object_id, path)
                body = None
                if method == "patch" and path.endswith("/progress"):
                    concrete += "?current_value=5"
                elif method == "patch":
                    body = PATCH_BODIES[resource]
                status, answer = call(base_url, method.upper(), concrete, token, body)
                probes += 1
                if status != 404:
                    raise Failed(f"{method.upper()} {concrete} with another user's id answered {status}: {answer}")
    return probes


def leaked_ids(report_dir, owner_ids, owner):
    secrets = {i for ids in owner_ids.values() for i in ids} | {owner["id"]}
    leaks = []
    for har in Path(report_dir).glob("*.json"):
        for entry in json.loads(har.read_text())["log"]["entries"]:
            text = entry["response"].get("content", {}).get("text") or ""
            found = [s for s in secrets if s in text]
            if found:
                leaks.append(f"{entry['request']['method']} {entry['request']['url']}: {found}")
    return leaks


def main():
    binary = sys.argv[1]
    started = time.monotonic()
    passed, failed = 0, 0
    with tempfile.TemporaryDirectory(prefix="omi-fuzz-") as folder:
        database_url = f"sqlite://{folder}/omi.db"
        alice = make_user(binary, database_url, "alice")
        bob = make_user(binary, database_url, "bob")
        server = Server(binary, database_url, Path(folder) / "server.log")
        try:
            paths = call(server.base_url, "GET", "/v1/openapi.json")[1]["paths"]
            bob_ids = seed_other_user(server.base_url, paths, bob, binary, database_url)
            before = snapshot(server.base_url, paths, bob, bob_ids)
            reports = Path(folder) / "reports"
            def fuzz(label, token, filters):
                return lambda: schemathesis(server.base_url, token, reports, filters, label)

            # Probes run before key management is fuzzed: that run may revoke A's developer key.
            steps = [
                ("developer routes with A's key",
                 fuzz("developer routes with A's key", alice["key"], ["--exclude-path-regex", "^/v1/dev/keys"])),
                ("A gets 404 for every B id", lambda: print(
                    f"{probe_foreign_ids(server.base_url, paths, alice, bob_ids)} probes with B's ids answered 404")),
                ("key management with A's account token",
                 fuzz("key management with A's account token", alice["token"], ["--include-path-regex", "^/v1/dev/keys"])),
                ("B's objects unchanged", lambda: check_unchanged(before, snapshot(server.base_url, paths, bob, bob_ids))),
                ("no response to A contained a B id", lambda: check_no_leaks(reports, bob_ids, bob)),
            ]
            for name, step in steps:
                try:
                    step()
                    passed += 1
                    print(f"ok: {name}", flush=True)
                except Failed as failure:
                    failed += 1
                    print(f"FAILED: {name}: {failure}", flush=True)
        finally:
            server.stop()
            if failed:
                print("\nserver log (warnings and errors):")
                print((Path(folder) / "server.log").read_text()[-5000:])
    print(f"\nfuzz finished in {time.monotonic() - started:.0f} s")
    print(f"fuzz: {passed} passed, {failed} failed")
    return 1 if failed else 0


def check_unchanged(before, after):
    changed = [path for path in before if before[path] != after.get(path)]
    if changed:
        raise Failed("B's view changed: " + "; ".join(
            f"{path}: {before[path]} -> {after.get(path)}" for path in changed))


def check_no_leaks(reports, owner_ids, owner):
    leaks = leaked_ids(reports, owner_ids, owner)
    if leaks:
        raise Failed(f"responses to A contained B's ids: {leaks[:5]}")


if __name__ == "__main__":
    sys.exit(main())

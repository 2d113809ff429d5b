#!/usr/bin/env python3
"""Does this server give sessions with equal binlog snapshot positions the same data?

mysnap's `--lock-free` takes a snapshot without a lock by opening N sessions with
`START TRANSACTION WITH CONSISTENT SNAPSHOT` and accepting them when all report the same
`binlog_snapshot_file` and `binlog_snapshot_position`. This probe checks that premise on
a server of your choice while writers commit transfers: whenever N sessions opened at
once report equal positions, each counts the rows of a ledger the writers append to; a
different count at an equal position means equal positions do not prove one snapshot.

  python3 bench/lockfree_probe.py --socket /path/mysqld.sock [--seconds 60] [--sessions 4]

It creates the database `lockfree_probe` (dropped at the end) and 4 writer sessions.
Needs PyMySQL (installed with pip when missing). Exit status 1 when a difference is seen.
"""
import argparse, subprocess, sys, threading, time

try:
    import pymysql
except ImportError:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "pymysql"], check=True)
    import pymysql

ap = argparse.ArgumentParser()
ap.add_argument("--socket", required=True)
ap.add_argument("--user", default="root")
ap.add_argument("--seconds", type=float, default=60)
ap.add_argument("--sessions", type=int, default=4)
args = ap.parse_args()

def connect(db=None):
    return pymysql.connect(unix_socket=args.socket, user=args.user, database=db, autocommit=True)

admin = connect()
cur = admin.cursor()
cur.execute("DROP DATABASE IF EXISTS lockfree_probe")
cur.execute("CREATE DATABASE lockfree_probe")
cur.execute("USE lockfree_probe")  # seq_1_to_N needs a current database
cur.execute("CREATE TABLE lockfree_probe.accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL) ENGINE=InnoDB")
cur.execute("INSERT INTO lockfree_probe.accounts SELECT seq, 1000 FROM seq_1_to_5000")
cur.execute("CREATE TABLE lockfree_probe.ledger (id BIGINT AUTO_INCREMENT PRIMARY KEY, a INT, b INT) ENGINE=InnoDB")

stop = threading.Event()

def writer(seed):
    c = connect("lockfree_probe")
    w = c.cursor()
    n = seed
    while not stop.is_set():
        n = (n * 1103515245 + 12345) % 2**31
        a, b = 1 + n % 5000, 1 + (n // 5000) % 5000
        try:
            w.execute("START TRANSACTION")
            w.execute("UPDATE accounts SET balance = balance - 1 WHERE id = %s", (a,))
            w.execute("UPDATE accounts SET balance = balance + 1 WHERE id = %s", (b,))
            w.execute("INSERT INTO ledger (a, b) VALUES (%s, %s)", (a, b))
            w.execute("COMMIT")
        except pymysql.MySQLError:
            w.execute("ROLLBACK")

writers = [threading.Thread(target=writer, args=(i + 7,)) for i in range(4)]
for t in writers:
    t.start()

sessions = [connect("lockfree_probe") for _ in range(args.sessions)]
for s in sessions:
    s.cursor().execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
trials = equal = differing = 0
deadline = time.time() + args.seconds
while time.time() < deadline:
    barrier = threading.Barrier(len(sessions))
    positions = [None] * len(sessions)

    def open_snapshot(i):
        c = sessions[i].cursor()
        barrier.wait()
        c.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        c.execute("SHOW STATUS LIKE 'binlog_snapshot_%'")
        positions[i] = tuple(r[1] for r in c.fetchall())

    openers = [threading.Thread(target=open_snapshot, args=(i,)) for i in range(len(sessions))]
    for t in openers:
        t.start()
    for t in openers:
        t.join()
    trials += 1
    if all(p == positions[0] for p in positions):
        equal += 1
        counts = []
        for s in sessions:
            c = s.cursor()
            c.execute("SELECT COUNT(*) FROM ledger")
            counts.append(c.fetchone()[0])
        if len(set(counts)) > 1:
            differing += 1
            print(f"position {positions[0]}: ledger rows seen per session {counts}", flush=True)
    for s in sessions:
        s.cursor().execute("ROLLBACK")

stop.set()
for t in writers:
    t.join()
cur.execute("SELECT VERSION()")
version = cur.fetchone()[0]
cur.execute("DROP DATABASE lockfree_probe")
print(f"{version}: {trials} attempts, {equal} with equal positions on all {len(sessions)} sessions, "
      f"{differing} of those with different data")
sys.exit(1 if differing else 0)

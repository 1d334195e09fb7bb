//! The real-world replay corpus (`cargo xtask corpus`): programs nobody
//! here wrote, run the way their users run them, each recorded by a real
//! daemon (default settings, following the program's pid and its
//! children), fetched with its children, its inputs deleted or changed,
//! and replayed from the bundle. A case is identical when the replay
//! prints the same stdout and stderr, ends with the same status and
//! replays every recorded event; threaded ones must do so every time of
//! several replays in a row.
//!
//! Prints a table and `N of M identical`. Exits non-zero only for what
//! must never happen: a replay that hangs, fails inside the replayer
//! (status 126, "cannot start"), or says it replayed identically while
//! its output differs. A replay that stops with a named reason is a
//! counted failure, not a crash.
//!
//! Usage: `corpus [FILTER]` (as root; cases whose name contains FILTER);
//! with `CORPUS_KEEP=1` the directory of each case that is not identical
//! (its bundle, report and inputs) is kept.
use std::{
    io::Write as _,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use tracer_tests::{Guard, Recorded, record_fetching, replay, replay_difference};

/// Replays of a threaded case (each must be identical).
const THREADED_REPLAYS: usize = 10;

/// One program of the corpus, ready to record.
struct Run {
    program: String,
    args: Vec<String>,
    stdin: Option<PathBuf>,
    env: Vec<(String, String)>,
    /// Deleted (or changed) before the replay: it must not need them.
    inputs: Vec<PathBuf>,
    /// Run beside the recorded program (a client of a recorded server):
    /// started before it, it must make the program exit.
    driver: Option<Box<dyn FnOnce() + Send>>,
    /// Stopped (by pid) after the recording: servers the program was a
    /// client of, gone at replay.
    peers: Vec<Guard>,
}

impl Run {
    fn new(program: &str, args: &[&str]) -> Self {
        Self {
            program: program.to_owned(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            stdin: None,
            env: vec![],
            inputs: vec![],
            driver: None,
            peers: vec![],
        }
    }
    fn inputs(mut self, paths: &[&Path]) -> Self {
        self.inputs.extend(paths.iter().map(|p| p.to_path_buf()));
        self
    }
    fn stdin(mut self, p: &Path) -> Self {
        self.stdin = Some(p.to_path_buf());
        self
    }
}

struct Case {
    name: &'static str,
    threaded: bool,
    /// Prepares the case in its directory.
    setup: fn(&Path) -> Run,
}

fn write(dir: &Path, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).expect("write an input");
    p
}

fn text(dir: &Path) -> PathBuf {
    let lines: String = (0..3000)
        .map(|i| {
            format!(
                "line {} {} {}\n",
                i * 7919 % 3001,
                ["alpha", "beta", "gamma"][i % 3],
                i
            )
        })
        .collect();
    write(dir, "input.txt", lines)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn sh(script: &str) -> Run {
    Run::new("/bin/sh", &["-c", script])
}

/// A free loopback port.
fn port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A loopback HTTP server (python's http.server) serving `dir`, started
/// outside the recording and stopped by pid after it.
fn http_server(dir: &Path) -> (Guard, u16) {
    let p = port();
    let g = Guard(Some(
        Command::new("python3")
            .args(["-m", "http.server", &p.to_string(), "--bind", "127.0.0.1"])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m http.server"),
    ));
    wait_port(p);
    (g, p)
}

fn git_repo(dir: &Path) -> PathBuf {
    let repo = dir.join("repo");
    std::fs::create_dir(&repo).expect("repo");
    let git = |args: &[&str]| {
        let ok = Command::new("git")
            .args(args)
            .current_dir(&repo)
            .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
            .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&["config", "user.email", "corpus@example.com"]);
    git(&["config", "user.name", "corpus"]);
    for i in 0..5 {
        std::fs::write(
            repo.join(format!("f{i}.txt")),
            format!("file {i}\n").repeat(50),
        )
        .expect("file");
        git(&["add", "."]);
        git(&["commit", "-q", "-m", &format!("commit {i}")]);
    }
    // A packed repository, as most are.
    git(&["gc", "-q"]);
    std::fs::write(repo.join("f1.txt"), "changed\n").expect("change");
    repo
}

fn build_with(dir: &Path, cmd: &str, args: &[&str]) {
    let ok = Command::new(cmd)
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .env("GOCACHE", dir.join("gocache"))
        .env("HOME", dir)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "{cmd} {args:?}");
}

const CASES: &[Case] = &[
    Case {
        name: "echo",
        threaded: false,
        setup: |_| Run::new("/bin/echo", &["hello", "corpus"]),
    },
    Case {
        name: "cat",
        threaded: false,
        setup: |d| {
            let f = text(d);
            Run::new("/bin/cat", &[s(&f)]).inputs(&[&f])
        },
    },
    Case {
        name: "sort",
        threaded: false,
        setup: |d| {
            let f = text(d);
            Run::new("/usr/bin/sort", &["-k2,2", "-n", s(&f)]).inputs(&[&f])
        },
    },
    Case {
        name: "sort-stdin",
        threaded: false,
        setup: |d| {
            let f = text(d);
            Run::new("/usr/bin/sort", &[]).stdin(&f).inputs(&[&f])
        },
    },
    Case {
        name: "pipeline-uniq",
        threaded: false,
        setup: |d| {
            let f = text(d);
            sh(&format!("cut -d' ' -f3 {} | sort | uniq -c", s(&f))).inputs(&[&f])
        },
    },
    Case {
        name: "wc",
        threaded: false,
        setup: |d| {
            let f = text(d);
            Run::new("/usr/bin/wc", &[s(&f)]).inputs(&[&f])
        },
    },
    Case {
        name: "sha256sum",
        threaded: false,
        setup: |d| {
            let f = text(d);
            Run::new("/usr/bin/sha256sum", &[s(&f)]).inputs(&[&f])
        },
    },
    Case {
        name: "md5sum",
        threaded: false,
        setup: |d| {
            let f = text(d);
            Run::new("/usr/bin/md5sum", &[s(&f)]).inputs(&[&f])
        },
    },
    Case {
        name: "base64",
        threaded: false,
        setup: |d| {
            let f = text(d);
            Run::new("/usr/bin/base64", &[s(&f)]).inputs(&[&f])
        },
    },
    Case {
        name: "od",
        threaded: false,
        setup: |d| {
            let f = text(d);
            Run::new("/usr/bin/od", &["-An", "-tx1", "-N", "4096", s(&f)]).inputs(&[&f])
        },
    },
    Case {
        name: "ls",
        threaded: false,
        setup: |d| {
            let t = d.join("tree");
            std::fs::create_dir(&t).expect("dir");
            for n in ["a", "b", "c"] {
                write(&t, n, n);
            }
            Run::new("/bin/ls", &["-la", "--time-style=+%s", s(&t)]).inputs(&[&t.join("b")])
        },
    },
    Case {
        name: "find",
        threaded: false,
        setup: |d| {
            let t = d.join("tree");
            std::fs::create_dir_all(t.join("x/y")).expect("dir");
            for n in ["a.rs", "x/b.rs", "x/y/c.txt"] {
                write(&t, n, n);
            }
            Run::new("/usr/bin/find", &[s(&t), "-name", "*.rs"]).inputs(&[&t.join("x/b.rs")])
        },
    },
    Case {
        name: "grep",
        threaded: false,
        setup: |d| {
            let f = text(d);
            Run::new("/bin/grep", &["-c", "beta", s(&f)]).inputs(&[&f])
        },
    },
    Case {
        name: "sed",
        threaded: false,
        setup: |d| {
            let f = text(d);
            Run::new("/bin/sed", &["-n", "s/gamma/delta/p", s(&f)]).inputs(&[&f])
        },
    },
    Case {
        name: "awk",
        threaded: false,
        setup: |d| {
            let f = text(d);
            Run::new(
                "/usr/bin/awk",
                &["{ n[$3]++ } END { for (k in n) print k, n[k] }", s(&f)],
            )
            .inputs(&[&f])
        },
    },
    Case {
        name: "tr-head-tail",
        threaded: false,
        setup: |d| {
            let f = text(d);
            sh(&format!("tr a-z A-Z < {} | head -n 100 | tail -n 5", s(&f))).inputs(&[&f])
        },
    },
    Case {
        name: "diff",
        threaded: false,
        setup: |d| {
            let a = text(d);
            let b = write(
                d,
                "b.txt",
                std::fs::read_to_string(&a)
                    .expect("read")
                    .replace("beta", "BETA"),
            );
            Run::new("/usr/bin/diff", &[s(&a), s(&b)]).inputs(&[&a, &b])
        },
    },
    Case {
        name: "stat",
        threaded: false,
        setup: |d| {
            let f = text(d);
            Run::new("/usr/bin/stat", &["-c", "%s %F %a", s(&f)]).inputs(&[&f])
        },
    },
    Case {
        name: "du",
        threaded: false,
        setup: |d| {
            text(d);
            Run::new("/usr/bin/du", &["-s", "--apparent-size", s(d)])
        },
    },
    Case {
        name: "dd",
        threaded: false,
        setup: |d| {
            let f = write(
                d,
                "blob",
                (0..3u32 << 20)
                    .map(|i| (i * 31 % 251) as u8)
                    .collect::<Vec<u8>>(),
            );
            Run::new(
                "/bin/dd",
                &[&format!("if={}", s(&f)), "bs=1M", "status=none"],
            )
            .inputs(&[&f])
        },
    },
    Case {
        name: "date",
        threaded: false,
        setup: |_| Run::new("/bin/date", &["+%s.%N"]),
    },
    Case {
        name: "tar-czf",
        threaded: false,
        setup: |d| {
            text(d);
            Run::new("/bin/tar", &["czf", "-", "-C", s(d), "input.txt"])
                .inputs(&[&d.join("input.txt")])
        },
    },
    Case {
        name: "tar-xzf",
        threaded: false,
        setup: |d| {
            text(d);
            build_with(d, "tar", &["czf", "in.tgz", "input.txt"]);
            let out = d.join("out");
            std::fs::create_dir(&out).expect("dir");
            Run::new("/bin/tar", &["xzvf", s(&d.join("in.tgz")), "-C", s(&out)])
                .inputs(&[&d.join("in.tgz")])
        },
    },
    Case {
        name: "gzip",
        threaded: false,
        setup: |d| {
            let f = text(d);
            Run::new("/bin/gzip", &["-c", s(&f)]).inputs(&[&f])
        },
    },
    Case {
        name: "xz",
        threaded: false,
        setup: |d| {
            let f = text(d);
            Run::new("/usr/bin/xz", &["-c", "-T1", s(&f)]).inputs(&[&f])
        },
    },
    Case {
        name: "bzip2",
        threaded: false,
        setup: |d| {
            let f = text(d);
            Run::new("/bin/bzip2", &["-c", s(&f)]).inputs(&[&f])
        },
    },
    Case {
        name: "zstd",
        threaded: false,
        setup: |d| {
            let f = text(d);
            Run::new("/usr/bin/zstd", &["-c", "-q", s(&f)]).inputs(&[&f])
        },
    },
    Case {
        name: "jq",
        threaded: false,
        setup: |d| {
            let f = write(d, "x.json", r#"{"a":[1,2,3],"b":{"c":"d"}}"#);
            Run::new("/usr/bin/jq", &["-c", ".a | map(. * 2)", s(&f)]).inputs(&[&f])
        },
    },
    Case {
        name: "bc",
        threaded: false,
        setup: |d| {
            let f = write(d, "calc", "scale=40\n4*a(1)\n2^100\n");
            Run::new("/usr/bin/bc", &["-l", s(&f)]).inputs(&[&f])
        },
    },
    Case {
        name: "openssl-dgst",
        threaded: false,
        setup: |d| {
            let f = text(d);
            Run::new("/usr/bin/openssl", &["dgst", "-sha256", s(&f)]).inputs(&[&f])
        },
    },
    Case {
        name: "git-log",
        threaded: false,
        setup: |d| {
            let r = git_repo(d);
            Run::new("/usr/bin/git", &["-C", s(&r), "log", "--oneline", "--stat"])
        },
    },
    Case {
        name: "git-status",
        threaded: false,
        setup: |d| {
            let r = git_repo(d);
            Run::new("/usr/bin/git", &["-C", s(&r), "status", "--short"])
        },
    },
    Case {
        name: "git-diff",
        threaded: false,
        setup: |d| {
            let r = git_repo(d);
            Run::new("/usr/bin/git", &["-C", s(&r), "diff"])
        },
    },
    Case {
        name: "make-gcc",
        threaded: false,
        setup: |d| {
            for i in 0..3 {
                write(
                    d,
                    &format!("m{i}.c"),
                    format!("int f{i}(void) {{ return {i}; }}\n"),
                );
            }
            write(
                d,
                "main.c",
                "#include <stdio.h>\nint f0(void); int f1(void); int f2(void);\nint main(void) { printf(\"%d\\n\", f0() + f1() + f2()); return 0; }\n",
            );
            write(
                d,
                "Makefile",
                "prog: main.o m0.o m1.o m2.o\n\tcc -o prog $^\n%.o: %.c\n\tcc -O1 -c $<\n",
            );
            Run::new("/usr/bin/make", &["-s", "-C", s(d)])
        },
    },
    Case {
        name: "sqlite3-wal",
        threaded: false,
        setup: |d| {
            let db = d.join("db.sqlite");
            Run::new("/usr/bin/sqlite3", &[s(&db), "PRAGMA journal_mode=WAL; CREATE TABLE t(a, b); INSERT INTO t VALUES (1, 'one'), (2, 'two'); SELECT b FROM t ORDER BY a DESC; SELECT count(*) FROM t;"]).inputs(&[&db])
        },
    },
    Case {
        name: "python-shim-threads",
        threaded: true,
        setup: |_| {
            Run::new(
                "python3",
                &[
                    "-c",
                    "import threading\nout = [0] * 4\ndef w(i):\n    out[i] = sum(range(i * 1000))\nts = [threading.Thread(target=w, args=(i,)) for i in range(4)]\n[t.start() for t in ts]\n[t.join() for t in ts]\nprint('threads', out)",
                ],
            )
        },
    },
    Case {
        name: "python-asyncio",
        threaded: false,
        setup: |_| {
            Run::new(
                "python3",
                &[
                    "-c",
                    "import asyncio\nasync def f(i):\n    await asyncio.sleep(0.01 * i)\n    return i * i\nasync def main():\n    print('asyncio', await asyncio.gather(*(f(i) for i in range(5))))\nasyncio.run(main())",
                ],
            )
        },
    },
    Case {
        name: "python-subprocess",
        threaded: false,
        setup: |_| {
            Run::new(
                "python3",
                &[
                    "-c",
                    "import subprocess\nr = subprocess.run(['/bin/echo', 'from', 'child'], capture_output=True)\nprint('subprocess', r.returncode, r.stdout)",
                ],
            )
        },
    },
    Case {
        name: "python-urllib",
        threaded: false,
        setup: |d| {
            write(d, "page.html", "<html>corpus page</html>\n");
            let (g, p) = http_server(d);
            let mut r = Run::new(
                "python3",
                &[
                    "-c",
                    &format!(
                        "import urllib.request\nprint(urllib.request.urlopen('http://127.0.0.1:{p}/page.html').read().decode())"
                    ),
                ],
            );
            r.peers.push(g);
            r
        },
    },
    Case {
        name: "curl",
        threaded: false,
        setup: |d| {
            write(d, "page.html", "<html>corpus page</html>\n");
            let (g, p) = http_server(d);
            let mut r = Run::new(
                "/usr/bin/curl",
                &["-s", &format!("http://127.0.0.1:{p}/page.html")],
            );
            r.peers.push(g);
            r
        },
    },
    Case {
        name: "perl",
        threaded: false,
        setup: |d| {
            let f = text(d);
            Run::new(
                "/usr/bin/perl",
                &[
                    "-ne",
                    "$n{(split)[2]}++; END { print map { \"$_ $n{$_}\\n\" } sort keys %n }",
                    s(&f),
                ],
            )
            .inputs(&[&f])
        },
    },
    Case {
        name: "bash-script",
        threaded: false,
        setup: |d| {
            let f = write(
                d,
                "script.sh",
                "#!/bin/bash\nset -e\nfor i in 1 2 3; do echo \"step $i $(( i * i ))\"; done\nx=$(printf '%s\\n' c a b | sort | tr '\\n' ' ')\necho \"sorted $x\"\n",
            );
            std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .expect("chmod");
            Run::new(s(&f), &[])
        },
    },
    Case {
        name: "node-fs-timers",
        threaded: true,
        setup: |d| {
            let f = write(d, "data.txt", "node data\n".repeat(100));
            Run::new("node", &["-e", &format!("const fs = require('fs');\n(async () => {{ const d = await fs.promises.readFile('{}', 'utf8'); await new Promise(r => setTimeout(r, 20)); console.log('node', d.length, d.split('\\n').length); }})();", s(&f))]).inputs(&[&f])
        },
    },
    Case {
        name: "node-worker",
        threaded: true,
        setup: |_| {
            Run::new(
                "node",
                &[
                    "-e",
                    "const { Worker } = require('worker_threads');\nconst w = new Worker('const { parentPort } = require(\"worker_threads\"); parentPort.postMessage(6 * 7);', { eval: true });\nw.on('message', m => { console.log('worker', m); w.terminate(); });",
                ],
            )
        },
    },
    Case {
        name: "java-pool",
        threaded: true,
        setup: |d| {
            write(
                d,
                "Pool.java",
                "import java.util.concurrent.*;\npublic class Pool { public static void main(String[] a) throws Exception { ExecutorService p = Executors.newFixedThreadPool(4); long s = 0; for (int i = 0; i < 8; i++) { final int k = i; s += p.submit(() -> (long) k * k).get(); } p.shutdown(); System.out.println(\"java \" + s); } }\n",
            );
            build_with(d, "javac", &["Pool.java"]);
            Run::new(
                "java",
                &[
                    "-Xshare:auto",
                    "-XX:TieredStopAtLevel=1",
                    "-cp",
                    s(d),
                    "Pool",
                ],
            )
        },
    },
    Case {
        name: "go-goroutines",
        threaded: true,
        setup: |d| {
            write(
                d,
                "main.go",
                "package main\nimport (\"fmt\"; \"sync\")\nfunc main() { var wg sync.WaitGroup; s := make([]int, 8); for i := 0; i < 8; i++ { wg.Add(1); go func(i int) { defer wg.Done(); s[i] = i * i }(i) }; wg.Wait(); fmt.Println(\"go\", s) }\n",
            );
            write(d, "go.mod", "module corpus\n\ngo 1.19\n");
            build_with(d, "go", &["build", "-o", "prog", "."]);
            Run::new(s(&d.join("prog")), &[])
        },
    },
    Case {
        name: "redis-server",
        threaded: true,
        setup: |d| {
            let p = port();
            let mut r = Run::new(
                "/usr/bin/redis-server",
                &[
                    "--port",
                    &p.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    s(d),
                    "--daemonize",
                    "no",
                    "--loglevel",
                    "warning",
                ],
            );
            r.driver = Some(Box::new(move || {
                wait_port(p);
                let cli = |args: &[&str]| {
                    let _ = Command::new("redis-cli")
                        .args(["-p", &p.to_string()])
                        .args(args)
                        .stdout(Stdio::null())
                        .status();
                };
                for i in 0..20 {
                    cli(&["SET", &format!("k{i}"), &format!("v{i}")]);
                    cli(&["GET", &format!("k{i}")]);
                }
                cli(&["SHUTDOWN", "NOSAVE"]);
            }));
            r
        },
    },
    Case {
        name: "nginx",
        threaded: false,
        setup: |d| {
            let p = port();
            let root = d.join("www");
            std::fs::create_dir(&root).expect("dir");
            write(&root, "index.html", "corpus via nginx\n".repeat(200));
            let pid_file = d.join("nginx.pid");
            let conf = write(
                d,
                "nginx.conf",
                format!(
                    "daemon off; master_process off; worker_processes 1; pid {pid}; error_log stderr error;\nevents {{ worker_connections 64; }}\nhttp {{ access_log off; client_body_temp_path {d}/t; proxy_temp_path {d}/t; fastcgi_temp_path {d}/t; uwsgi_temp_path {d}/t; scgi_temp_path {d}/t;\n server {{ listen 127.0.0.1:{p}; root {root}; }} }}\n",
                    pid = s(&pid_file),
                    d = s(d),
                    root = s(&root)
                ),
            );
            let mut r = Run::new("/usr/sbin/nginx", &["-c", s(&conf), "-p", s(d)])
                .inputs(&[&root.join("index.html")]);
            r.driver = Some(Box::new(move || {
                wait_port(p);
                for _ in 0..10 {
                    let _ = Command::new("curl")
                        .args([
                            "-s",
                            "-o",
                            "/dev/null",
                            &format!("http://127.0.0.1:{p}/index.html"),
                        ])
                        .status();
                }
                // Graceful stop, by the pid it wrote.
                if let Some(pid) = std::fs::read_to_string(&pid_file)
                    .ok()
                    .and_then(|t| t.trim().parse::<i32>().ok())
                {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGQUIT,
                    );
                }
            }));
            r
        },
    },
];

/// What became of one case.
struct Outcome {
    name: &'static str,
    identical: bool,
    /// Why not, or what it cannot do.
    why: String,
    /// Something that must never happen (hang, replayer failure, a wrong
    /// replay called identical).
    defect: bool,
}

fn run_case(c: &Case, dir: &Path) -> Outcome {
    let mut run = (c.setup)(dir);
    let driver = run.driver.take().map(std::thread::spawn);
    let env: Vec<(&str, &str)> = run
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let args: Vec<&str> = run.args.iter().map(String::as_str).collect();
    let rec: Recorded = record_fetching(
        dir,
        &[],
        &run.program,
        &args,
        run.stdin.as_deref(),
        &env,
        &["--children"],
        &mut |_, _| {},
    );
    if let Some(d) = driver {
        let _ = d.join();
    }
    drop(std::mem::take(&mut run.peers));
    for p in &run.inputs {
        if p.is_dir() {
            let _ = std::fs::remove_dir_all(p);
        } else {
            let _ = std::fs::remove_file(p);
        }
    }
    let replays = if c.threaded { THREADED_REPLAYS } else { 1 };
    for n in 0..replays {
        let rep = replay(&rec.bundle, &[]);
        let again = if replays > 1 {
            format!(" (replay {} of {replays})", n + 1)
        } else {
            String::new()
        };
        if rep.status.code() == Some(126) {
            return Outcome {
                name: c.name,
                identical: false,
                why: format!(
                    "replayer failure{again}: {} {}",
                    first_line(&rep.summary),
                    String::from_utf8_lossy(&rep.stderr)
                        .lines()
                        .last()
                        .unwrap_or("")
                ),
                defect: true,
            };
        }
        if let Some(diff) = replay_difference(&rec, &rep) {
            let reason = rep.report["divergence"]["reason"]
                .as_str()
                .map(|r| {
                    format!(
                        "event {}: {r}",
                        rep.report["divergence"]["event_index"]
                            .as_u64()
                            .unwrap_or(0)
                    )
                })
                .unwrap_or(diff.clone());
            // The replay said it did what the recording did, and it did not
            // (a replay that says it left child processes out does not say
            // that: the bundle lacked them).
            let children_left_out = rep.summary.contains("which this replay does not run");
            let defect = rep.status.code() == rec.status.code()
                && rep.report["outcome"]["kind"] == "exited"
                && rep.report["divergence"].is_null()
                && rep.stdout != rec.stdout
                && !children_left_out;
            let timed = rep.report["time_differences"]
                .as_array()
                .filter(|d| !d.is_empty())
                .map(|d| {
                    format!(
                        "ended as recorded, but {} writes differ where it read approximate times \
                         (first at event {}: {})",
                        d.len(),
                        d[0]["event_index"].as_u64().unwrap_or(0),
                        d[0]["syscall"].as_str().unwrap_or("?")
                    )
                });
            let reason = if let Some(t) = timed {
                t
            } else if children_left_out {
                format!(
                    "the bundle lacks child processes (fetched before they were stored): {reason}"
                )
            } else {
                reason
            };
            return Outcome {
                name: c.name,
                identical: false,
                why: format!("{reason}{again}"),
                defect,
            };
        }
    }
    Outcome {
        name: c.name,
        identical: true,
        why: String::new(),
        defect: false,
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").chars().take(200).collect()
}

fn main() {
    let filter = std::env::args().nth(1).unwrap_or_default();
    // The daemon and tracectl are built beside this program.
    if std::env::var_os("TRACER_DAEMON_BIN").is_none()
        && let Some(dir) = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        // SAFETY: set before any thread is started.
        unsafe { std::env::set_var("TRACER_DAEMON_BIN", dir.join("tracer-daemon")) };
    }
    // A case's failure is reported in its row, not as a panic's trace.
    std::panic::set_hook(Box::new(|_| {}));
    let started = Instant::now();
    let mut results = vec![];
    for c in CASES.iter().filter(|c| c.name.contains(&filter)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = Instant::now();
        print!("{:<22} ", c.name);
        let _ = std::io::stdout().flush();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_case(c, dir.path())))
            .unwrap_or_else(|p| {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                Outcome {
                    name: c.name,
                    identical: false,
                    why: format!("harness: {}", first_line(&msg)),
                    defect: msg.contains("did not finish"),
                }
            });
        println!(
            "{:<10} {:>5.1} s  {}",
            if r.identical {
                "identical"
            } else if r.defect {
                "DEFECT"
            } else {
                "stopped"
            },
            t.elapsed().as_secs_f64(),
            r.why.chars().take(220).collect::<String>()
        );
        if !r.identical && std::env::var_os("CORPUS_KEEP").is_some() {
            // The bundle and inputs, to look at (CORPUS_KEEP=1).
            println!("{:<22} kept in {}", "", dir.keep().display());
        }
        results.push(r);
    }
    let ok = results.iter().filter(|r| r.identical).count();
    println!(
        "corpus: {ok} of {} identical ({:.0} %), {:.0} s",
        results.len(),
        100.0 * ok as f64 / results.len().max(1) as f64,
        started.elapsed().as_secs_f64()
    );
    let defects: Vec<&str> = results
        .iter()
        .filter(|r| r.defect)
        .map(|r| r.name)
        .collect();
    if !defects.is_empty() {
        println!(
            "corpus: defects (hang, replayer failure, or a wrong replay called identical): {defects:?}"
        );
        std::process::exit(1);
    }
}

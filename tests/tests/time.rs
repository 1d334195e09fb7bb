//! Exact time by default: real programs recorded by the daemon with its
//! default settings read the clock through the vDSO (libc, a raw vDSO
//! call, Go's runtime, python, node), and their replays print, byte for
//! byte, the times they printed. A time read the recording lacks is said,
//! never passed off as exact.
//!
//! Needs root (the daemon loads its eBPF programs).
use std::time::Duration;

use tracer_tests::*;

fn exact(rep: &Replayed) -> bool {
    rep.report["time_exact"].as_bool() == Some(true)
}

/// Replays identically with every time read answered from the recording.
fn assert_exact_replay(rec: &Recorded, what: &str) -> Replayed {
    // The clock moves on: a replay that read it would print other times.
    std::thread::sleep(Duration::from_millis(50));
    let rep = replay(&rec.bundle, &[]);
    assert_replayed_as_recorded(rec, &rep, what);
    assert!(exact(&rep), "{what}: time not exact\n{}", rep.summary);
    assert_eq!(
        rep.report["time_calls_from_timeline"].as_u64(),
        Some(0),
        "{what}: {}",
        rep.summary
    );
    rep
}

#[test]
fn date_with_nanoseconds_replays_byte_for_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = record(dir.path(), "/bin/date", &["+%s.%N"], None, &[]);
    assert!(rec.status.success());
    let rep = assert_exact_replay(&rec, "date +%s.%N");
    assert!(rep.summary.contains("time: exact"), "{}", rep.summary);
}

const CLOCKS: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>
int main(void) {
    static const clockid_t ids[] = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME};
    static const char *names[] = {"REALTIME", "MONOTONIC", "BOOTTIME"};
    void *vdso = dlopen("linux-vdso.so.1", RTLD_LAZY | RTLD_NOLOAD);
    int (*raw)(clockid_t, struct timespec *) =
        vdso ? (int (*)(clockid_t, struct timespec *))dlsym(vdso, "__vdso_clock_gettime") : 0;
    if (!raw) { puts("no vDSO clock_gettime"); return 1; }
    for (int i = 0; i < 3; i++) {
        struct timespec a, b;
        clock_gettime(ids[i], &a);
        raw(ids[i], &b);
        printf("%s libc %lld.%09ld vdso %lld.%09ld\n", names[i], (long long)a.tv_sec,
               a.tv_nsec, (long long)b.tv_sec, b.tv_nsec);
    }
    struct timeval tv;
    gettimeofday(&tv, 0);
    printf("gettimeofday %lld.%06ld time %lld\n", (long long)tv.tv_sec, (long)tv.tv_usec,
           (long long)time(0));
    return 0;
}
"#;

/// Every clock, through libc and through the vDSO's own symbol.
#[test]
fn clocks_through_libc_and_the_raw_vdso_replay_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = build_c(dir.path(), "clocks", CLOCKS, &["-O2"]);
    let rec = record(dir.path(), exe.to_str().expect("path"), &[], None, &[]);
    assert!(
        rec.status.success(),
        "{}",
        String::from_utf8_lossy(&rec.stderr)
    );
    let out = String::from_utf8_lossy(&rec.stdout).into_owned();
    assert!(
        out.contains("BOOTTIME libc") && out.contains("vdso"),
        "{out}"
    );
    assert_exact_replay(&rec, "clocks");
    // A static program: no shared libc, its vDSO patched all the same.
    let st = build_c(
        dir.path(),
        "clocks-static",
        STATIC_CLOCKS,
        &["-O2", "-static"],
    );
    let rec = record(dir.path(), st.to_str().expect("path"), &[], None, &[]);
    assert!(rec.status.success(), "{:?}", rec.status);
    assert_exact_replay(&rec, "static clocks");
}

const STATIC_CLOCKS: &str = r#"
#include <stdio.h>
#include <time.h>
int main(void) {
    struct timespec r, m;
    clock_gettime(CLOCK_REALTIME, &r);
    clock_gettime(CLOCK_MONOTONIC, &m);
    printf("%lld.%09ld %lld.%09ld %lld\n", (long long)r.tv_sec, r.tv_nsec, (long long)m.tv_sec,
           m.tv_nsec, (long long)time(0));
    return 0;
}
"#;

/// Builds a Go program printing `time.Now().UnixNano()` from four
/// goroutines and from main.
fn build_go_time_program(d: &std::path::Path) -> std::path::PathBuf {
    std::fs::write(
        d.join("main.go"),
        "package main\nimport (\"fmt\"; \"sync\"; \"time\")\nfunc main() { var wg sync.WaitGroup; out := make([]int64, 4); for i := range out { wg.Add(1); go func(i int) { defer wg.Done(); out[i] = time.Now().UnixNano() }(i) }; wg.Wait(); fmt.Println(time.Now().UnixNano(), out) }\n",
    )
    .expect("source");
    std::fs::write(d.join("go.mod"), "module timecheck\n\ngo 1.19\n").expect("go.mod");
    let built = std::process::Command::new("go")
        .args(["build", "-o", "prog", "."])
        .current_dir(d)
        .env("GOCACHE", d.join("gocache"))
        .env("GOPATH", d.join("gopath"))
        .env("GOFLAGS", "-mod=mod")
        .output()
        .expect("go");
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    d.join("prog")
}

/// Builds and records the Go time program with one P (the goroutines
/// share one thread).
fn record_go_time_program(d: &std::path::Path) -> Recorded {
    let prog = build_go_time_program(d);
    let rec = record(
        d,
        prog.to_str().expect("path"),
        &[],
        None,
        &[("GOMAXPROCS", "1")],
    );
    assert!(
        rec.status.success(),
        "{}",
        String::from_utf8_lossy(&rec.stderr)
    );
    rec
}

/// Go's runtime reads the clock through the vDSO without libc, from
/// several threads: every time a Go program printed is a read the
/// recording holds, and its replay is exact.
#[test]
fn go_time_now_in_goroutines_is_recorded_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let rec = record_go_time_program(d);
    // Every time the program printed is one the recording holds: Go's
    // runtime calls the vDSO without libc, and each of those calls is a
    // recorded CLOCK_REALTIME read with that value.
    let printed: Vec<i64> = String::from_utf8_lossy(&rec.stdout)
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| w.len() > 15)
        .map(|w| w.parse().expect("a time"))
        .collect();
    assert_eq!(printed.len(), 5, "{}", String::from_utf8_lossy(&rec.stdout));
    let recorded = realtime_reads(&rec.bundle);
    for t in &printed {
        assert!(
            recorded.contains(t),
            "printed {t}, which no recorded clock read returned (of {} reads)",
            recorded.len()
        );
    }
    let rep = replay(&rec.bundle, &["--watchdog", "3"]);
    assert!(exact(&rep), "{}", rep.summary);
}

/// The CLOCK_REALTIME values (ns) that the bundle's clock_gettime calls
/// returned.
fn realtime_reads(bundle: &std::path::Path) -> Vec<i64> {
    let b =
        tracer_store::bundle::decode(&std::fs::read(bundle).expect("bundle")).expect("a bundle");
    b.events
        .iter()
        .filter_map(syscall)
        .filter(|s| s.nr == libc::SYS_clock_gettime && s.args.first() == Some(&0))
        .filter_map(|s| {
            let ts = buffer(s, 1, tracer_proto::Direction::Out)?;
            let word = |i: usize| Some(i64::from_le_bytes(ts.get(i..i + 8)?.try_into().ok()?));
            Some(word(0)? * 1_000_000_000 + word(8)?)
        })
        .collect()
}

/// The same program replays byte for byte only when the Go runtime's
/// threads (sysmon, idle Ms) interleave in user space as recorded, which
/// a replay that orders syscalls, not instructions, does not always
/// reproduce: about half of the replays here diverge at another syscall
/// (a preemption signal sysmon sends, a spin on a lock), issue 14. Run it
/// with `--ignored` to see where that stands.
#[test]
#[ignore = "multi-threaded Go replays diverge by thread interleaving (issue 14)"]
fn go_goroutines_replay_byte_for_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let rec = record_go_time_program(d);
    let rep = replay(&rec.bundle, &[]);
    assert_replayed_as_recorded(&rec, &rep, "go goroutines");
}

#[test]
fn python_time_ns_and_datetime_replay_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = record(
        dir.path(),
        "/usr/bin/python3",
        &[
            "-c",
            "import time, datetime\nprint(time.time_ns())\nprint(datetime.datetime.now().isoformat())\nprint(time.monotonic_ns())",
        ],
        None,
        &[],
    );
    assert!(
        rec.status.success(),
        "{}",
        String::from_utf8_lossy(&rec.stderr)
    );
    assert_exact_replay(&rec, "python time");
}

#[test]
fn node_hrtime_replays_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = record(
        dir.path(),
        "/usr/bin/node",
        &[
            // One V8 worker: fewer threads whose interleaving (not time)
            // could decide the replay at exit.
            "--v8-pool-size=1",
            "-e",
            "console.log(process.hrtime.bigint().toString(), Date.now())",
        ],
        None,
        &[],
    );
    assert!(
        rec.status.success(),
        "{}",
        String::from_utf8_lossy(&rec.stderr)
    );
    let rep = replay(&rec.bundle, &[]);
    assert_eq!(rep.stdout, rec.stdout, "{}", rep.summary);
    assert!(exact(&rep), "{}", rep.summary);
}

/// A read of the vDSO's clock data the recording does not have (here the
/// program reads the data page itself, as an unpatched vDSO function
/// would) is flagged in the recording, and the replay says its time is
/// approximate rather than exact.
#[test]
fn a_time_read_the_recording_lacks_is_flagged_not_called_exact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = record_c(
        dir.path(),
        "vvar-reader",
        r#"
#include <stdio.h>
#include <string.h>
int main(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    unsigned long a = 0, b;
    while (fgets(line, sizeof line, f))
        if (strstr(line, "[vvar]")) sscanf(line, "%lx-%lx", &a, &b);
    fclose(f);
    if (!a) { puts("no vvar"); return 0; }
    volatile unsigned char c = *(volatile unsigned char *)a;
    (void)c;
    puts("read the clock data");
    return 0;
}
"#,
        &["-O1"],
    );
    assert_eq!(rec.stdout, b"read the clock data\n");
    let rep = replay(&rec.bundle, &[]);
    assert!(!exact(&rep), "{}", rep.summary);
    assert!(rep.summary.contains("time: approximate"), "{}", rep.summary);
    assert!(
        rep.summary.contains("read the vDSO's clock"),
        "{}",
        rep.summary
    );
}

/// `--approximate-time` leaves the vDSO alone: the replay of `date` then
/// answers from the timeline and says the printed time may differ.
#[test]
fn approximate_time_is_said_in_the_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = record_with(
        dir.path(),
        &["--approximate-time"],
        "/bin/date",
        &["+%s.%N"],
        None,
        &[],
    );
    let rep = replay(&rec.bundle, &[]);
    assert!(!exact(&rep), "{}", rep.summary);
    assert!(rep.report["time_calls_from_timeline"].as_u64() > Some(0));
}

/// A program reading the TSC itself: no recording can hold those values,
/// so replay traps `rdtsc`/`rdtscp` and answers the recording host's
/// counter at that point of the recorded timeline. The rate the program
/// measures against the (exactly recorded) monotonic clock is the one it
/// measured when recorded, and every replay answers the same values.
#[test]
fn rdtsc_is_answered_from_the_recorded_timeline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = record_c(
        dir.path(),
        "tsc-reader",
        r#"
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>
static long long mono(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}
int main(void) {
    unsigned aux;
    long long m0 = mono();
    unsigned long long t0 = __rdtsc();
    usleep(20000);
    long long m1 = mono();
    unsigned long long t1 = __rdtscp(&aux);
    unsigned long long t2 = __rdtsc();
    /* The rate in units of 100 MHz, from 20 ms: a replay's answers sit
       within a microsecond or two of the recorded reads. */
    double rate = (double)(t1 - t0) / (double)(m1 - m0) * 10.0;
    printf("increasing %d, rate %.0f\n", t0 < t1 && t1 < t2, rate);
    return 0;
}
"#,
        &["-O1"],
    );
    let printed = String::from_utf8_lossy(&rec.stdout).into_owned();
    assert!(printed.starts_with("increasing 1, rate "), "{printed}");
    let first = assert_exact_replay(&rec, "rdtsc");
    let reads = first.report["tsc_reads"].as_u64().unwrap_or(0);
    // The program's three, beside the dynamic loader's own.
    assert!(reads >= 3, "{}", first.summary);
    assert!(
        first.summary.contains("rdtsc reads answered"),
        "{}",
        first.summary
    );
    let second = replay(&rec.bundle, &[]);
    assert_eq!(second.stdout, first.stdout);
    assert_eq!(second.report["tsc_reads"].as_u64(), Some(reads));
}

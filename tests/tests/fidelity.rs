//! Replay of what real programs do that the effects table once called
//! unknown or compared wrongly: `prctl` per option, syscalls the kernel
//! does not have, registers a syscall does not read.
use std::path::Path;

use tracer_proto as pb;
use tracer_tests::{
    Recorded, assert_replayed_as_recorded, build_c, record, record_c, record_tree, record_with,
    replay,
};

const PRCTL: &str = r#"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/membarrier.h>

int main(void) {
    char name[16] = {0};
    /* A name from the stack, read back through prctl's memory. */
    char want[] = "fidelity-name";
    printf("set_name %d\n", prctl(PR_SET_NAME, want, 0, 0, 0));
    printf("get_name %d %s\n", prctl(PR_GET_NAME, name, 0, 0, 0), name);
    printf("no_new_privs %d\n", prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
    printf("get_no_new_privs %d\n", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
    int sig = -1;
    printf("pdeathsig %d %d\n", prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0), sig);
    int tsc = -1;
    printf("tsc %d %d\n", prctl(PR_GET_TSC, &tsc, 0, 0, 0), tsc);
    printf("dumpable %d\n", prctl(PR_GET_DUMPABLE, 0, 0, 0, 0));
    /* Syscalls the kernel does not have: ENOSYS, no memory touched. */
    long r = syscall(-1L);
    printf("syscall(-1) %ld %d\n", r, errno);
    r = syscall(1000L, 1, 2, 3);
    printf("syscall(1000) %ld %d\n", r, errno);
    /* openat's mode is garbage without O_CREAT: not compared. */
    int fd = syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDONLY, (long)&name);
    printf("openat %d\n", fd >= 0);
    printf("membarrier %d\n", (int)syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, (long)&sig));
    return 0;
}
"#;

/// [`record_c`] of a process tree: the bundle holds its child processes.
/// Replays `rec`'s bundle, which must stop incomplete (never diverge or
/// pass) with a reason that says `why`.
fn replay_stops_for(rec: &Recorded, why: &str) {
    let rep = replay(&rec.bundle, &[]);
    assert_eq!(
        rep.report["outcome"]["kind"], "incomplete",
        "{}",
        rep.summary
    );
    assert!(rep.summary.contains(why), "{}", rep.summary);
}

fn record_c_tree(dir: &Path, name: &str, source: &str, flags: &[&str]) -> Recorded {
    let exe = build_c(dir, name, source, flags);
    let rec = record_tree(dir, exe.to_str().expect("path"), &[]);
    assert!(
        rec.status.success(),
        "{name} failed when recorded: {:?}",
        rec.status
    );
    rec
}

/// `prctl` per option (names set and read back, ints written through
/// pointers), ENOSYS syscalls, and registers no syscall reads: the replay
/// prints what the recording printed. They stopped it as unknown effects
/// or as a divergence before.
#[test]
fn prctl_enosys_and_unread_registers_replay_as_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = record_c(dir.path(), "prctl", PRCTL, &["-O0"]);
    let out = String::from_utf8_lossy(&rec.stdout).into_owned();
    assert!(out.contains("get_name 0 fidelity-name"), "{out}");
    assert!(out.contains("syscall(-1) -1 38"), "{out}");
    // A run with another address layout passes other garbage in the mode.
    let rep = replay(&rec.bundle, &[]);
    assert_replayed_as_recorded(&rec, &rep, "replay");
}

/// Programs started through `#!` scripts (as pyenv's shims, or
/// `#!/usr/bin/env node` tools, are): the root process is a script run
/// through `env`, and it runs another script in a child. Each runs the
/// interpreter the kernel ran, with the argv the kernel built, and the
/// tree replays as recorded.
#[test]
fn scripts_run_through_their_interpreters_replay_as_recorded() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let outer = dir.path().join("outer.sh");
    let inner = dir.path().join("inner.sh");
    std::fs::write(
        &outer,
        format!(
            "#!/usr/bin/env sh\necho \"outer $0 $*\"\n{} second\n",
            inner.display()
        ),
    )
    .expect("script");
    std::fs::write(&inner, "#!/bin/sh -e\necho \"inner $0 $1\"\n").expect("script");
    for s in [&outer, &inner] {
        std::fs::set_permissions(s, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let rec = tracer_tests::record_tree(dir.path(), outer.to_str().expect("path"), &["first"]);
    assert!(rec.status.success());
    let out = String::from_utf8_lossy(&rec.stdout).into_owned();
    assert!(out.contains("outer ") && out.contains("inner "), "{out}");
    std::fs::remove_file(&outer).expect("delete");
    std::fs::remove_file(&inner).expect("delete");
    let rep = replay(&rec.bundle, &[]);
    assert_replayed_as_recorded(&rec, &rep, "replay");
}

/// `date +%s.%N` recorded with approximate time reads the time through
/// the vDSO, which the recording then lacks: the replay answers from the
/// recorded timeline, the
/// printed nanoseconds differ, and the replay must say so rather than stop
/// or pass. It goes on, shows the recorded line, ends with 124 and names
/// the write; `--strict` stops there as a divergence.
#[test]
fn a_write_that_differs_by_approximate_time_is_reported_not_hidden() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = record_with(
        dir.path(),
        &["--approximate-time"],
        "/bin/date",
        &["+%s.%N"],
        None,
        &[],
    );
    assert!(rec.status.success());
    let rep = replay(&rec.bundle, &[]);
    assert_eq!(rep.status.code(), Some(124), "{}", rep.summary);
    assert_eq!(rep.stdout, rec.stdout, "the recorded line is shown");
    assert!(rep.summary.contains("NOT IDENTICAL"), "{}", rep.summary);
    let diffs = rep.report["time_differences"]
        .as_array()
        .expect("differences");
    assert_eq!(diffs.len(), 1, "{}", rep.summary);
    assert_eq!(diffs[0]["syscall"], "write");
    assert!(rep.report["time_calls_from_timeline"].as_u64() > Some(0));
    let strict = replay(&rec.bundle, &["--strict", "--kill-on-divergence"]);
    assert_eq!(strict.status.code(), Some(125), "{}", strict.summary);
    assert_eq!(strict.report["outcome"]["kind"], "diverged");
}

/// The leader execs while another thread sleeps: the kernel ends that
/// thread first, and a traced thread stops on its way out until resumed.
/// The replay resumes it (it hung there before) and replays as recorded.
#[test]
fn an_exec_while_another_thread_lives_replays_as_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = record_c(
        dir.path(),
        "exec-over-thread",
        r#"
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <unistd.h>
static void *sleeper(void *a) { (void)a; sleep(1000); return NULL; }
int main(void) {
    pthread_t t;
    pthread_create(&t, NULL, sleeper, NULL);
    sched_yield();
    puts("about to exec");
    fflush(stdout);
    char *argv[] = {"echo", "after-exec", NULL};
    execv("/bin/echo", argv);
    return 1;
}
"#,
        &["-pthread"],
    );
    assert_eq!(rec.stdout, b"about to exec\nafter-exec\n");
    let rep = replay(&rec.bundle, &["--watchdog", "10"]);
    assert_replayed_as_recorded(&rec, &rep, "an exec over a live thread");
}

/// Memory the kernel changes by madvise: MADV_DONTNEED gives a private
/// file mapping its file's bytes back (the replay maps a real copy of the
/// file, not anonymous memory holding its bytes), and one that fails at an
/// mlocked page has zeroed the pages before it (it runs, failing as
/// recorded, rather than being answered).
#[test]
fn madvise_changes_memory_as_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("page.bin");
    std::fs::write(&data, vec![b'f'; 8192]).expect("file");
    let exe = build_c(
        dir.path(),
        "madvise-effects",
        r#"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
int main(int argc, char **argv) {
    (void)argc;
    long pg = sysconf(_SC_PAGESIZE);
    int fd = open(argv[1], O_RDONLY);
    char *p = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    memset(p, 0, pg);
    int r = madvise(p, pg, MADV_DONTNEED);
    printf("dontneed %d, file bytes back: %d\n", r, p[0] == 'f' && p[pg - 1] == 'f');
    char *a = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    a[0] = 'a';
    a[pg] = 'b';
    mlock(a + pg, pg);
    r = madvise(a, 2 * pg, MADV_DONTNEED);
    printf("locked %d %d, first page %d, second page %c\n", r, errno, a[0], a[pg]);
    return 0;
}
"#,
        &[],
    );
    let rec = record(
        dir.path(),
        exe.to_str().expect("path"),
        &[data.to_str().expect("path")],
        None,
        &[],
    );
    assert!(rec.status.success());
    assert_eq!(
        String::from_utf8_lossy(&rec.stdout),
        "dontneed 0, file bytes back: 1\nlocked -1 22, first page 0, second page b\n"
    );
    std::fs::remove_file(&data).expect("the file is gone");
    let rep = replay(&rec.bundle, &[]);
    assert_replayed_as_recorded(&rec, &rep, "madvise");
}

/// `fcntl` commands that write a struct through their pointer other than
/// the lock ones (F_GETOWN_EX's struct f_owner_ex): recorded, so that the
/// replay gives the program what the kernel gave it.
#[test]
fn fcntl_owner_structs_are_recorded_and_replayed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = record_c(
        dir.path(),
        "fcntl-owner",
        r#"
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(void) {
    int fds[2];
    pipe(fds);
    struct f_owner_ex own = { F_OWNER_TID, (pid_t)syscall(SYS_gettid) };
    printf("set %d\n", fcntl(fds[0], F_SETOWN_EX, &own));
    struct f_owner_ex got = { -1, -1 };
    int r = fcntl(fds[0], F_GETOWN_EX, &got);
    printf("get %d type %d same tid %d\n", r, got.type, got.pid == own.pid);
    return 0;
}
"#,
        &[],
    );
    assert_eq!(
        String::from_utf8_lossy(&rec.stdout),
        "set 0\nget 0 type 0 same tid 1\n"
    );
    let rep = replay(&rec.bundle, &[]);
    assert_replayed_as_recorded(&rec, &rep, "fcntl F_GETOWN_EX");
}

/// Ioctl requests write their answers into the program: the legacy tty and
/// socket ones by the shared table, the encoded ones (`_IOR`) by the size
/// their number carries. All are recorded and replayed byte for byte.
#[test]
fn ioctl_answers_are_recorded_by_request_and_replayed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = record_c(
        dir.path(),
        "ioctl-known",
        r#"
#define _GNU_SOURCE
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
int main(void) {
    int fds[2];
    pipe(fds);
    write(fds[1], "hello", 5);
    int n = -1;
    int r = ioctl(fds[0], FIONREAD, &n);
    printf("FIONREAD %d %d\n", r, n);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    r = ioctl(s, SIOCGIFFLAGS, &ifr);
    printf("SIOCGIFFLAGS %d up %d loopback %d\n", r, !!(ifr.ifr_flags & IFF_UP),
           !!(ifr.ifr_flags & IFF_LOOPBACK));
    r = ioctl(s, SIOCGIFINDEX, &ifr);
    printf("SIOCGIFINDEX %d %d\n", r, ifr.ifr_ifindex);
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    unsigned pty = 12345;
    r = ioctl(m, TIOCGPTN, &pty);
    printf("TIOCGPTN %d %d\n", r, pty != 12345);
    return 0;
}
"#,
        &[],
    );
    let out = String::from_utf8_lossy(&rec.stdout).into_owned();
    assert!(
        out.starts_with("FIONREAD 0 5\nSIOCGIFFLAGS 0 up 1 loopback 1\n"),
        "{out}"
    );
    assert!(out.contains("TIOCGPTN 0 1"), "{out}");
    let rep = replay(&rec.bundle, &[]);
    assert_replayed_as_recorded(&rec, &rep, "known ioctls");
}

/// An ioctl whose memory effect the recorder cannot know (SIOCGIFCONF
/// fills a buffer its struct points to) is recorded as unknown, and the
/// replay stops there naming the request, rather than go on with memory
/// the kernel wrote and nobody captured.
#[test]
fn an_ioctl_of_unknown_effect_stops_the_replay_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = record_c(
        dir.path(),
        "ioctl-unknown",
        r#"
#include <net/if.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
int main(void) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    char buf[4096];
    struct ifconf ifc = { .ifc_len = sizeof buf, .ifc_buf = buf };
    int r = ioctl(s, SIOCGIFCONF, &ifc);
    printf("SIOCGIFCONF %d first %s\n", r, ifc.ifc_len > 0 ? ifc.ifc_req[0].ifr_name : "-");
    return 0;
}
"#,
        &[],
    );
    assert!(String::from_utf8_lossy(&rec.stdout).starts_with("SIOCGIFCONF 0 first lo"));
    let rep = replay(&rec.bundle, &["--kill-on-divergence"]);
    assert_eq!(rep.status.code(), Some(125), "{}", rep.summary);
    assert!(
        rep.summary.contains("ioctl request 0x8912"),
        "the reason names the request: {}",
        rep.summary
    );
    assert!(rep.stdout.is_empty(), "nothing printed past the stop");
}

/// A program that faults on purpose (a JVM probes the OS so at start, a GC
/// takes SIGSEGV on a guard page) gets its SIGSEGV from the kernel at the
/// faulting instruction, with the address in its siginfo. The recording
/// holds that address, and the replay lets the program fault again itself
/// where it did (it used to send the signal right after the previous
/// syscall, a `tkill` whose siginfo says so).
#[test]
fn a_deliberate_fault_is_recorded_with_its_address_and_replayed_in_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = record_c(
        dir.path(),
        "fault",
        r#"
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
static sigjmp_buf back;
static volatile int code;
static void *volatile addr;
static void on_segv(int sig, siginfo_t *si, void *uc) {
    code = si->si_code;
    addr = si->si_addr;
    siglongjmp(back, 1);
}
int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, 0);
    for (int i = 1; i <= 3; i++) {
        if (sigsetjmp(back, 1) == 0) {
            getpid();
            volatile int x = 0;
            for (int k = 0; k < 100000; k++) x += k;
            *(volatile int *)(long)(i * 16) = x;
        }
        printf("fault %d code %d addr %p\n", i, code, addr);
    }
    return 0;
}
"#,
        &[],
    );
    assert_eq!(
        String::from_utf8_lossy(&rec.stdout),
        "fault 1 code 1 addr 0x10\nfault 2 code 1 addr 0x20\nfault 3 code 1 addr 0x30\n"
    );
    let b = tracer_store::bundle::decode(&std::fs::read(&rec.bundle).expect("bundle"))
        .expect("the bundle decodes");
    let faults: Vec<(i32, u64)> = b
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            Some(pb::event::Kind::Signal(s)) if s.signo == 11 => Some((s.code, s.addr)),
            _ => None,
        })
        .collect();
    assert_eq!(faults, vec![(1, 0x10), (1, 0x20), (1, 0x30)]);
    let rep = replay(&rec.bundle, &[]);
    assert_replayed_as_recorded(&rec, &rep, "deliberate faults");
}

/// A read interrupted by a signal whose handler (installed with
/// SA_RESTART) makes syscalls of its own restarts after the handler
/// returns: the replay must restart it there, not fail it with EINTR
/// because the handler's write came next in the recording.
#[test]
fn a_syscall_restarted_after_a_handler_that_made_syscalls_replays_as_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = record_c(
        dir.path(),
        "restart",
        r#"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
static void on_alarm(int sig) {
    (void)sig;
    write(1, "tick\n", 5);
}
int main(void) {
    int p[2];
    pipe(p);
    pid_t child = fork();
    if (child == 0) {
        usleep(400000);
        write(p[1], "data", 4);
        _exit(0);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, 0);
    struct itimerval it = {{0, 0}, {0, 100000}};
    setitimer(ITIMER_REAL, &it, 0);
    char buf[8];
    ssize_t n = read(p[0], buf, sizeof buf);
    printf("read %zd errno %d\n", n, n < 0 ? errno : 0);
    waitpid(child, 0, 0);
    return 0;
}
"#,
        &[],
    );
    assert_eq!(
        String::from_utf8_lossy(&rec.stdout),
        "tick\nread 4 errno 0\n"
    );
    let rep = replay(&rec.bundle, &[]);
    assert_replayed_as_recorded(&rec, &rep, "restart after a handler");
}

/// Shared state that whichever thread comes first makes (an allocator's
/// chunk, made once under a lock): when recorded, thread B made it while
/// A computed; in replay A runs on at once after its syscall, comes first
/// and makes the mmap that the recording has B make. The same memory at
/// the same address is made, B then finds it made, and the replay is
/// identical, the move counted.
#[test]
fn a_lazily_made_shared_mapping_may_be_made_by_another_thread_in_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = record_c(
        dir.path(),
        "lazy",
        r#"
#include <pthread.h>
#include <stdio.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char *chunk;
static void put(int at, char c) {
    pthread_mutex_lock(&lock);
    if (!chunk)
        chunk = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    chunk[at] = c;
    pthread_mutex_unlock(&lock);
}
static void *a(void *x) {
    (void)x;
    getppid();
    volatile unsigned long n = 0;
    for (unsigned long i = 0; i < 400000000UL; i++) n += i;
    put(0, 'A');
    write(1, "a\n", 2);
    return NULL;
}
static void *b(void *x) {
    (void)x;
    struct timespec t = {0, 20000000};
    nanosleep(&t, NULL);
    put(1, 'B');
    write(1, "b\n", 2);
    return NULL;
}
int main(void) {
    pthread_t ta, tb;
    pthread_create(&ta, NULL, a, NULL);
    pthread_create(&tb, NULL, b, NULL);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    printf("%c%c\n", chunk[0], chunk[1]);
    return 0;
}
"#,
        &["-O0", "-pthread"],
    );
    assert_eq!(String::from_utf8_lossy(&rec.stdout), "b\na\nAB\n");
    let rep = replay(&rec.bundle, &[]);
    assert_replayed_as_recorded(&rec, &rep, "a mapping made by another thread");
    assert_eq!(
        rep.report["moved_between_threads"], 1,
        "the move is not counted: {}",
        rep.summary
    );
}

/// A sleep cut short by a handled signal fails with EINTR and has
/// written the time that remained: the recording holds it (a failed
/// syscall's outputs are otherwise not taken) and the replay gives it
/// back (rr's intr_sleep_no_restart checks it).
#[test]
fn a_sleep_cut_short_by_a_signal_gives_the_time_that_remained() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = record_c(
        dir.path(),
        "sleep_rem",
        r#"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
static void on_alarm(int sig) { (void)sig; }
int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, 0);
    struct itimerval it = {{0, 0}, {0, 100000}};
    setitimer(ITIMER_REAL, &it, 0);
    struct timespec req = {3, 0}, rem = {0, 0};
    int r = nanosleep(&req, &rem);
    printf("nanosleep %d errno %d rem %ld\n", r, errno, (long)rem.tv_sec);
    setitimer(ITIMER_REAL, &it, 0);
    rem.tv_sec = 0;
    r = clock_nanosleep(CLOCK_MONOTONIC, 0, &req, &rem);
    printf("clock_nanosleep %d rem %ld\n", r, (long)rem.tv_sec);
    return 0;
}
"#,
        &[],
    );
    assert_eq!(
        String::from_utf8_lossy(&rec.stdout),
        "nanosleep -1 errno 4 rem 2\nclock_nanosleep 4 rem 2\n"
    );
    let rep = replay(&rec.bundle, &[]);
    assert_replayed_as_recorded(&rec, &rep, "a sleep cut short");
}

/// A mapping of /dev/zero is anonymous memory (shared between parent and
/// child when shared): replay maps it so, and never reads the device as a
/// file (it read forever, until the host ran out of memory).
#[test]
fn a_mapping_of_dev_zero_replays_as_anonymous_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = record_c_tree(
        dir.path(),
        "dev_zero",
        r#"
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    int fd = open("/dev/zero", O_RDWR);
    char *priv = mmap(NULL, 0x200000, PROT_READ, MAP_PRIVATE, fd, 0);
    char *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    pid_t child = fork();
    if (child == 0) {
        shared[0] = 'z';
        _exit(0);
    }
    waitpid(child, 0, 0);
    printf("private %d shared %c\n", priv[0x1fffff], shared[0]);
    return 0;
}
"#,
        &[],
    );
    assert_eq!(String::from_utf8_lossy(&rec.stdout), "private 0 shared z\n");
    let rep = replay(&rec.bundle, &[]);
    assert_replayed_as_recorded(&rec, &rep, "/dev/zero mappings");
}

/// A memfd (a JIT's double mapping, dotnet's huge sparse one): what the
/// program wrote into it and sized it to is what its mappings hold in
/// replay, two mappings of it share their pages, a later write to the
/// file shows in a mapping made before it, and a child maps the same file.
#[test]
fn a_memfd_s_mappings_hold_what_the_program_made() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = record_c_tree(
        dir.path(),
        "memfd_maps",
        r#"
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    int fd = memfd_create("jit", MFD_CLOEXEC);
    int other = memfd_create("jit", 0);
    if (fd < 0 || other < 0 || write(fd, "code", 4) != 4 || write(other, "data", 4) != 4)
        return 1;
    if (ftruncate(fd, 1LL << 40) != 0) return 2;
    char *rw = mmap(NULL, 1L << 40, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    char *rx = mmap(NULL, 8192, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
    char *o = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, other, 0);
    if (rw == MAP_FAILED || rx == MAP_FAILED || o == MAP_FAILED) return 3;
    memcpy(rw + 4096, "seen", 4);
    if (pwrite(fd, "late", 4, 8) != 4) return 4;
    pid_t child = fork();
    if (child == 0) {
        char *c = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
        printf("child %.4s %.4s\n", c, c + 8);
        fflush(stdout);
        _exit(0);
    }
    waitpid(child, 0, 0);
    printf("%.4s %.4s %.4s %.4s far %d\n", rx, rx + 4096, rx + 8, o, rw[(1L << 40) - 1]);
    return 0;
}
"#,
        &[],
    );
    assert_eq!(
        String::from_utf8_lossy(&rec.stdout),
        "child code late\ncode seen late data far 0\n"
    );
    let rep = replay(&rec.bundle, &[]);
    assert_replayed_as_recorded(&rec, &rep, "memfd mappings");
}

/// System V shared memory made by the program: a child attaches the
/// segment after the fork and writes it, the parent reads what the child
/// wrote through its own attachment; a segment made by another program
/// (outside the recording) stops the replay at its shmat, named, rather
/// than replaying it with contents nobody recorded.
#[test]
fn a_system_v_segment_the_program_made_is_shared_in_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let program = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    int id = shmget(IPC_PRIVATE, 3 * 4096 + 10, IPC_CREAT | 0600);
    if (id < 0) return 1;
    char *p = shmat(id, NULL, 0);
    if (p == (void *)-1) return 2;
    pid_t child = fork();
    if (child == 0) {
        char *c = shmat(id, NULL, 0);
        strcpy(c + 3 * 4096, "from the child");
        shmdt(c);
        _exit(0);
    }
    waitpid(child, 0, 0);
    printf("parent reads: %s, zero %d\n", p + 3 * 4096, p[100]);
    shmdt(p);
    shmctl(id, IPC_RMID, NULL);
    if (argc > 1) {
        /* a segment another program made: found by its key, not made */
        int other = shmget((key_t)atoi(argv[1]), 0, 0600);
        char *o = shmat(other, NULL, SHM_RDONLY);
        if (o == (void *)-1) return 3;
        printf("other: %s\n", o);
    }
    return 0;
}
"#;
    let rec = record_c_tree(dir.path(), "sysv_shm", program, &[]);
    assert_eq!(
        String::from_utf8_lossy(&rec.stdout),
        "parent reads: from the child, zero 0\n"
    );
    let rep = replay(&rec.bundle, &[]);
    assert_replayed_as_recorded(&rec, &rep, "System V shared memory");

    // Another program's segment, filled before the recording.
    let key = 0x7a00_0000 + (std::process::id() & 0xffff) as i32;
    // SAFETY: plain SysV calls on a segment this test makes and removes.
    let other = unsafe { libc::shmget(key, 4096, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) };
    assert!(other >= 0, "shmget of the outside segment");
    // SAFETY: attaches the segment just made; it is detached below.
    let at = unsafe { libc::shmat(other, std::ptr::null(), 0) } as *mut u8;
    assert_ne!(at as isize, -1, "shmat of the outside segment");
    // SAFETY: the segment is 4096 bytes long.
    unsafe { std::ptr::copy_nonoverlapping(c"made outside".as_ptr().cast(), at, 13) };
    let exe = dir.path().join("sysv_shm");
    let rec =
        tracer_tests::record_tree(dir.path(), exe.to_str().expect("path"), &[&key.to_string()]);
    // SAFETY: detaches and removes the segment made above.
    unsafe {
        libc::shmdt(at as *const libc::c_void);
        libc::shmctl(other, libc::IPC_RMID, std::ptr::null_mut());
    }
    assert!(
        String::from_utf8_lossy(&rec.stdout).ends_with("other: made outside\n"),
        "{}",
        String::from_utf8_lossy(&rec.stdout)
    );
    replay_stops_for(&rec, "made before the recording");
}

/// A recorded tracer of its own child (PTRACE_TRACEME, a stop, PEEKDATA,
/// GETREGS and GETREGSET, then CONT): its ptrace calls are answered with
/// what they read when recorded, the child replays under it; a tracer that
/// wrote into its child (POKEDATA) stops the replay there, named.
#[test]
fn a_program_tracing_its_child_replays_what_its_tracer_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let program = r#"
#include <elf.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>
static volatile long word = 0x1234567;
int main(int argc, char **argv) {
    pid_t child = fork();
    if (child == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        printf("child sees %lx\n", word);
        fflush(stdout);
        _exit(3);
    }
    int status;
    waitpid(child, &status, 0);
    long peeked = ptrace(PTRACE_PEEKDATA, child, (void *)&word, 0);
    struct user_regs_struct regs;
    ptrace(PTRACE_GETREGS, child, 0, &regs);
    struct user_regs_struct set;
    struct iovec iov = { &set, sizeof set };
    ptrace(PTRACE_GETREGSET, child, (void *)NT_PRSTATUS, &iov);
    if (argc > 1)
        ptrace(PTRACE_POKEDATA, child, (void *)&word, (void *)0x7654321);
    ptrace(PTRACE_CONT, child, 0, 0);
    waitpid(child, &status, 0);
    printf("peeked %lx, stopped at orig_rax %lld, regset %zu bytes agrees %d, child exit %d\n",
           peeked, (long long)regs.orig_rax, iov.iov_len, set.rip == regs.rip, WEXITSTATUS(status));
    return 0;
}
"#;
    let rec = record_c_tree(dir.path(), "tracer_of_child", program, &[]);
    let out = String::from_utf8_lossy(&rec.stdout).into_owned();
    assert!(
        out.contains("peeked 1234567, stopped at orig_rax ")
            && out.contains("bytes agrees 1, child exit 3")
            && out.contains("child sees 1234567"),
        "{out}"
    );
    let rep = replay(&rec.bundle, &[]);
    assert_replayed_as_recorded(&rec, &rep, "a tracer of its child");

    let exe = dir.path().join("tracer_of_child");
    let rec = tracer_tests::record_tree(dir.path(), exe.to_str().expect("path"), &["poke"]);
    assert!(
        String::from_utf8_lossy(&rec.stdout).contains("child sees 7654321"),
        "{}",
        String::from_utf8_lossy(&rec.stdout)
    );
    replay_stops_for(&rec, "ptrace request 0x5 changed process");
}

/// runc's way of running itself: its own program copied into a memfd and
/// executed from there (`fexecve`). Replay runs what the program put in
/// the memfd.
#[test]
fn a_program_executed_from_a_memfd_replays_as_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = record_c_tree(
        dir.path(),
        "fexec",
        r#"
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>
extern char **environ;
int main(int argc, char **argv) {
    if (argc == 2) {
        printf("second, from %s\n", argv[1]);
        return 0;
    }
    int self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    int m = memfd_create("copy", MFD_CLOEXEC);
    char buf[8192];
    ssize_t n;
    while ((n = read(self, buf, sizeof buf)) > 0)
        if (write(m, buf, n) != n) return 2;
    printf("first\n");
    fflush(stdout);
    char *next[] = {argv[0], "a memfd", NULL};
    fexecve(m, next, environ);
    return 3;
}
"#,
        &[],
    );
    assert_eq!(
        String::from_utf8_lossy(&rec.stdout),
        "first\nsecond, from a memfd\n"
    );
    let rep = replay(&rec.bundle, &[]);
    assert_replayed_as_recorded(&rec, &rep, "fexecve");
}

/// The main thread ends its own thread (`exit`, not `exit_group`) while
/// another lives and later ends the process with a status: the leader is
/// a zombie the kernel reports only with the group, so replay must not
/// wait for it (it stalled until the watchdog); the process ends with the
/// recorded status.
#[test]
fn the_main_thread_exiting_before_the_others_replays_as_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = build_c(
        dir.path(),
        "leader_exit",
        r#"
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
static void *run(void *x) {
    (void)x;
    struct timespec t = {0, 50000000};
    nanosleep(&t, NULL);
    write(1, "thread lives on\n", 16);
    exit(3);
}
int main(void) {
    pthread_t t;
    pthread_create(&t, NULL, run, NULL);
    syscall(SYS_exit, 0);
    return 0;
}
"#,
        &["-pthread"],
    );
    let rec = record(dir.path(), exe.to_str().expect("path"), &[], None, &[]);
    assert_eq!(rec.status.code(), Some(3), "{:?}", rec.status);
    assert_eq!(String::from_utf8_lossy(&rec.stdout), "thread lives on\n");
    let rep = replay(&rec.bundle, &[]);
    assert_replayed_as_recorded(&rec, &rep, "the leader's early exit");
}

/// A child process dies of a thread's fault while its main thread
/// sleeps: the main thread's recording ends in that sleep, cut short, as
/// its replay does; the parent sees the same death.
#[test]
fn a_thread_s_fatal_fault_ends_its_process_as_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = record_c_tree(
        dir.path(),
        "fatal_fault",
        r#"
#include <pthread.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
static void *crash(void *x) {
    (void)x;
    getpid();
    *(volatile int *)8 = 1;
    return NULL;
}
int main(void) {
    pid_t child = fork();
    if (child == 0) {
        pthread_t t;
        pthread_create(&t, NULL, crash, NULL);
        sleep(100);
        _exit(0);
    }
    int status;
    waitpid(child, &status, 0);
    printf("signaled %d signal %d\n", WIFSIGNALED(status), WTERMSIG(status));
    return 0;
}
"#,
        &["-pthread"],
    );
    assert_eq!(
        String::from_utf8_lossy(&rec.stdout),
        "signaled 1 signal 11\n"
    );
    let rep = replay(&rec.bundle, &[]);
    assert_replayed_as_recorded(&rec, &rep, "a thread's fatal fault");
}

/// Another thread ends the process (`_exit`) while the main thread
/// sleeps: the main thread's recording ends in that sleep, cut short, and
/// the replay ends as recorded (it said the program ended before the end
/// of its recording).
#[test]
fn a_process_ended_by_another_thread_while_main_sleeps_replays_as_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = record_c(
        dir.path(),
        "other_ends",
        r#"
#include <pthread.h>
#include <time.h>
#include <unistd.h>
static void *run(void *x) {
    (void)x;
    struct timespec t = {0, 50000000};
    nanosleep(&t, NULL);
    write(1, "ending\n", 7);
    _exit(0);
}
int main(void) {
    pthread_t t;
    pthread_create(&t, NULL, run, NULL);
    sleep(100);
    return 1;
}
"#,
        &["-pthread"],
    );
    assert_eq!(String::from_utf8_lossy(&rec.stdout), "ending\n");
    let rep = replay(&rec.bundle, &[]);
    assert_replayed_as_recorded(&rec, &rep, "a process another thread ended");
}

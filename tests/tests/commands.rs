//! Syscalls whose memory depends on their command (seccomp, the System V
//! ctl calls, capget by version, mincore, process_vm_writev into itself),
//! recorded per command by the shared effects table and replayed from the
//! recording; a command whose memory no rule describes stops the replay,
//! named.
use tracer_tests::{assert_replayed_as_recorded, record_c, replay};

/// A program installs its own seccomp filter: `getppid` fails with EPERM
/// (SECCOMP_RET_ERRNO), `mprotect` traps (SECCOMP_RET_TRAP, data 7) and
/// its SIGSYS handler makes it return 42 and reads the siginfo. In replay
/// the filter is not installed (it would filter the replayer's own
/// syscalls); the failed and trapped calls never run (a real `mprotect`
/// to PROT_NONE would fault the write after it), and the SIGSYS comes
/// with the kernel's siginfo, not tgkill's.
#[test]
fn a_program_s_own_seccomp_filter_replays_as_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = record_c(
        dir.path(),
        "seccomp-filter",
        r#"
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

static volatile int nr = -1, code = -1, err = -1, addr_ok = -1;
static volatile unsigned arch;

static void on_sigsys(int sig, siginfo_t *si, void *p) {
    ucontext_t *uc = p;
    (void)sig;
    nr = si->si_syscall;
    code = si->si_code;
    err = si->si_errno;
    arch = si->si_arch;
    addr_ok = (long)si->si_call_addr == uc->uc_mcontext.gregs[REG_RIP];
    uc->uc_mcontext.gregs[REG_RAX] = 42;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    char *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSYS, &sa, NULL);
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mprotect, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP | 7),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { sizeof f / sizeof f[0], f };
    printf("no_new_privs %d\n", prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
    unsigned action = SECCOMP_RET_TRAP;
    printf("trap available %ld\n", syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action));
    struct seccomp_notif_sizes sizes = { 0, 0, 0 };
    long r = syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes);
    printf("notif sizes %ld %u %u %u\n", r, sizes.seccomp_notif, sizes.seccomp_notif_resp,
           sizes.seccomp_data);
    printf("filter %ld\n", syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog));
    errno = 0;
    r = syscall(SYS_getppid);
    printf("getppid %ld errno %d\n", r, errno);
    r = syscall(SYS_mprotect, page, 4096, PROT_NONE);
    page[0] = 'x';
    printf("mprotect %ld nr %d code %d errno %d arch %#x at the call %d wrote %c\n", r, nr, code,
           err, arch, addr_ok, page[0]);
    printf("seccomp mode %d\n", prctl(PR_GET_SECCOMP, 0, 0, 0, 0));
    return 0;
}
"#,
        &[],
    );
    let out = String::from_utf8_lossy(&rec.stdout).into_owned();
    assert!(
        out.contains("filter 0\ngetppid -1 errno 1\n")
            && out.contains(
                "mprotect 42 nr 10 code 1 errno 7 arch 0xc000003e at the call 1 wrote x\n"
            )
            && out.contains("seccomp mode 2\n"),
        "recorded: {out}"
    );
    let rep = replay(&rec.bundle, &["--kill-on-divergence"]);
    assert_replayed_as_recorded(&rec, &rep, "a program's own seccomp filter");
    assert_eq!(
        rep.report["syscalls_stopped_by_filter"].as_u64(),
        Some(2),
        "getppid and mprotect were stopped by the filter: {}",
        rep.summary
    );
}

/// The System V ctl calls write their structs per command (IPC_STAT,
/// IPC_INFO, SHM_INFO...), msgrcv its mtype and text, semctl's value
/// commands nothing; capget one or two data structs by the header's
/// version (a version 1 call must not be read past its 12 bytes: the
/// buffer ends at a page here); mincore a byte per page;
/// process_vm_writev into the process itself its own memory. All replay
/// byte for byte.
#[test]
fn per_command_memory_replays_as_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = record_c(
        dir.path(),
        "ipc-commands",
        r#"
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include <linux/capability.h>

union semun { int val; struct semid_ds *buf; unsigned short *array; struct seminfo *info; };
struct msg { long mtype; char text[32]; };

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int q = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    struct msg m = { 5, "queued" };
    printf("msgsnd %d\n", msgsnd(q, &m, 7, 0));
    struct msqid_ds qs;
    memset(&qs, 0, sizeof qs);
    /* Each call before the printf that shows its memory: argument order is unspecified. */
    int r = msgctl(q, IPC_STAT, &qs);
    printf("msgctl stat %d qnum %lu\n", r, (unsigned long)qs.msg_qnum);
    struct msginfo mi;
    memset(&mi, 0, sizeof mi);
    printf("msgctl info %d\n", msgctl(q, MSG_INFO, (struct msqid_ds *)&mi) >= 0);
    struct msg got;
    memset(&got, 0, sizeof got);
    ssize_t n = msgrcv(q, &got, sizeof got.text, 0, 0);
    printf("msgrcv %zd type %ld %s\n", n, got.mtype, got.text);
    msgctl(q, IPC_RMID, NULL);

    int s = semget(IPC_PRIVATE, 3, IPC_CREAT | 0600);
    struct semid_ds ss;
    memset(&ss, 0, sizeof ss);
    union semun a = { .buf = &ss };
    r = semctl(s, 0, IPC_STAT, a);
    printf("semctl stat %d nsems %lu\n", r, (unsigned long)ss.sem_nsems);
    a.val = 4;
    r = semctl(s, 1, SETVAL, a);
    printf("semctl setval %d getval %d\n", r, semctl(s, 1, GETVAL));
    semctl(s, 0, IPC_RMID);

    int shm = shmget(IPC_PRIVATE, 8192, IPC_CREAT | 0600);
    struct shmid_ds ds;
    memset(&ds, 0, sizeof ds);
    r = shmctl(shm, IPC_STAT, &ds);
    printf("shmctl stat %d size %zu\n", r, ds.shm_segsz);
    struct shm_info si;
    memset(&si, 0, sizeof si);
    r = shmctl(shm, SHM_INFO, (struct shmid_ds *)&si);
    printf("shmctl info %d\n", r >= 0 && si.used_ids > 0);
    shmctl(shm, IPC_RMID, NULL);

    /* Version 1 data at the very end of a page, the next one inaccessible. */
    char *two = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mprotect(two + 4096, 4096, PROT_NONE);
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_1, 0 };
    struct __user_cap_data_struct *d1 = (void *)(two + 4096 - sizeof *d1);
    long c = syscall(SYS_capget, &h, d1);
    printf("capget v1 %ld eff %#x\n", c, d1->effective);
    struct __user_cap_data_struct d3[2];
    memset(d3, 0, sizeof d3);
    h.version = _LINUX_CAPABILITY_VERSION_3;
    c = syscall(SYS_capget, &h, d3);
    printf("capget v3 %ld eff %#x %#x\n", c, d3[0].effective, d3[1].effective);
    h.version = 0;
    c = syscall(SYS_capget, &h, NULL);
    printf("capget probe %ld version %#x\n", c, h.version);

    unsigned char vec[3] = { 9, 9, 9 };
    r = mincore(two, 8192, vec);
    printf("mincore %d %d %d\n", r, vec[0] & 1, vec[1] & 1);

    char from[] = "written", to[16] = "";
    struct iovec l = { from, sizeof from }, rv = { to, sizeof from };
    n = process_vm_writev(getpid(), &l, 1, &rv, 1, 0);
    printf("process_vm_writev %zd %s\n", n, to);
    return 0;
}
"#,
        &[],
    );
    let out = String::from_utf8_lossy(&rec.stdout).into_owned();
    assert!(
        out.contains("msgrcv 7 type 5 queued\n")
            && out.contains("semctl stat 0 nsems 3\n")
            && out.contains("shmctl stat 0 size 8192\n")
            && out.contains("capget probe 0 version 0x20080522\n")
            && out.contains("mincore 0 1 0\n")
            && out.contains("process_vm_writev 8 written\n"),
        "recorded: {out}"
    );
    let rep = replay(&rec.bundle, &["--kill-on-divergence"]);
    assert_replayed_as_recorded(&rec, &rep, "per-command memory");
}

/// semctl GETALL writes one u16 per semaphore of the set, a count the call
/// does not say: it is recorded as of unknown effect, and the replay stops
/// there naming the command, rather than go on with memory nobody
/// captured.
#[test]
fn a_command_of_unknown_memory_stops_the_replay_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = record_c(
        dir.path(),
        "semctl-getall",
        r#"
#include <stdio.h>
#include <sys/ipc.h>
#include <sys/sem.h>
int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int s = semget(IPC_PRIVATE, 3, IPC_CREAT | 0600);
    printf("semget %d\n", s >= 0);
    unsigned short all[3] = { 9, 9, 9 };
    int r = semctl(s, 0, GETALL, all);
    printf("getall %d %u %u %u\n", r, all[0], all[1], all[2]);
    semctl(s, 0, IPC_RMID);
    return 0;
}
"#,
        &[],
    );
    assert_eq!(
        String::from_utf8_lossy(&rec.stdout),
        "semget 1\ngetall 0 0 0 0\n"
    );
    let rep = replay(&rec.bundle, &["--kill-on-divergence"]);
    assert_eq!(rep.status.code(), Some(125), "{}", rep.summary);
    assert!(
        rep.summary.contains("semctl command 0xd") && rep.summary.contains("GETALL"),
        "the reason names the command: {}",
        rep.summary
    );
    assert_eq!(
        String::from_utf8_lossy(&rep.stdout),
        "semget 1\n",
        "nothing printed past the stop"
    );
}

/// recvmmsg fills several messages' headers (msg_len, name length,
/// flags) and each one's iovecs up to its length; perf_event_open reads an
/// attr sized by its own field, and on E2BIG (an attr larger than the
/// kernel's with bytes it does not know set) writes the kernel's size
/// into it. Both replay byte for byte.
#[test]
fn messages_and_event_attrs_replay_as_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = record_c(
        dir.path(),
        "recvmmsg-perf",
        r#"
#define _GNU_SOURCE
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int sv[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
    send(sv[0], "first message", 13, 0);
    send(sv[0], "second", 6, 0);
    send(sv[0], "third one here", 14, 0);
    char a[4][5], b[4][16];
    struct iovec iov[4][2];
    struct mmsghdr mm[4];
    memset(a, '.', sizeof a);
    memset(b, '.', sizeof b);
    memset(mm, 0, sizeof mm);
    for (int i = 0; i < 4; i++) {
        iov[i][0] = (struct iovec){ a[i], sizeof a[i] };
        iov[i][1] = (struct iovec){ b[i], sizeof b[i] };
        mm[i].msg_hdr.msg_iov = iov[i];
        mm[i].msg_hdr.msg_iovlen = 2;
    }
    int n = recvmmsg(sv[1], mm, 4, MSG_DONTWAIT, NULL);
    printf("recvmmsg %d\n", n);
    for (int i = 0; i < n; i++)
        printf("  %u [%.5s|%.16s]\n", mm[i].msg_len, a[i], b[i]);

    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_CONTEXT_SWITCHES;
    int fd = syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0);
    unsigned long long count = 12345;
    printf("perf_event_open %d read %zd\n", fd >= 0, fd >= 0 ? read(fd, &count, 8) : 0);
    unsigned char *big = calloc(1, 4096);
    struct perf_event_attr *ba = (void *)big;
    ba->size = 4096;
    ba->type = PERF_TYPE_SOFTWARE;
    big[4095] = 1;
    long r = syscall(SYS_perf_event_open, ba, 0, -1, -1, 0);
    printf("too big %ld size now %u\n", r, ba->size);
    return 0;
}
"#,
        &[],
    );
    let out = String::from_utf8_lossy(&rec.stdout).into_owned();
    assert!(
        out.starts_with(
            "recvmmsg 3\n  13 [first| message........]\n  6 [secon|d...............]\n  14 [third| one here.......]\n"
        ) && out.contains("too big -1 size now "),
        "recorded: {out}"
    );
    assert!(
        !out.contains("size now 4096"),
        "E2BIG wrote the kernel's size: {out}"
    );
    let rep = replay(&rec.bundle, &["--kill-on-divergence"]);
    assert_replayed_as_recorded(&rec, &rep, "recvmmsg and perf_event_open");
}

/// `bpf` per command: a map made and a program loaded with its verifier
/// log (the kernel writes the log through the attr, and its true size
/// into the attr) replay as recorded; a map lookup, whose value is of
/// the map's size (the call does not say it), stops the replay named.
#[test]
fn bpf_commands_replay_or_stop_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = record_c(
        dir.path(),
        "bpf-commands",
        r#"
#include <linux/bpf.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Room for fields newer than these headers (log_true_size at 140). */
static union { union bpf_attr a; unsigned char raw[256]; } u;
static long bpf(int cmd) { return syscall(SYS_bpf, cmd, &u, sizeof u); }

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    union bpf_attr *a = &u.a;
    a->map_type = BPF_MAP_TYPE_ARRAY;
    a->key_size = 4;
    a->value_size = 8;
    a->max_entries = 2;
    int map = bpf(BPF_MAP_CREATE);
    printf("map %d\n", map >= 0);
    struct bpf_insn prog[] = {
        { .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 0 },
        { .code = BPF_JMP | BPF_EXIT },
    };
    char log[4096];
    memset(log, 0, sizeof log);
    memset(&u, 0, sizeof u);
    a->prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
    a->insns = (unsigned long)prog;
    a->insn_cnt = 2;
    a->license = (unsigned long)"GPL";
    a->log_level = 2;
    a->log_buf = (unsigned long)log;
    a->log_size = sizeof log;
    int p = bpf(BPF_PROG_LOAD);
    printf("prog %d log %zu true size %u\n%s\n", p >= 0, strlen(log), *(unsigned *)(u.raw + 140), log);
    unsigned key = 0;
    unsigned long long value = 7;
    memset(&u, 0, sizeof u);
    a->map_fd = map;
    a->key = (unsigned long)&key;
    a->value = (unsigned long)&value;
    long r = bpf(BPF_MAP_LOOKUP_ELEM);
    printf("lookup %ld %llu\n", r, value);
    return 0;
}
"#,
        &[],
    );
    let out = String::from_utf8_lossy(&rec.stdout).into_owned();
    assert!(
        out.starts_with("map 1\nprog 1 log ") && out.contains("lookup 0 0\n"),
        "recorded: {out}"
    );
    let rep = replay(&rec.bundle, &["--kill-on-divergence"]);
    assert_eq!(rep.status.code(), Some(125), "{}", rep.summary);
    assert!(
        rep.summary.contains("bpf command 0x1") && rep.summary.contains("map's key or value"),
        "the reason names the command: {}",
        rep.summary
    );
    let before_lookup = out.split("lookup").next().unwrap_or_default();
    assert_eq!(
        String::from_utf8_lossy(&rep.stdout),
        before_lookup,
        "the map and the program with its log replayed as recorded"
    );
}

//! The replayed process under ptrace: launching it behind a seccomp filter,
//! stopping at its syscalls, reading and writing its registers and memory.
//!
//! Every syscall of the tracee goes through a seccomp `RET_TRACE` filter,
//! so the replayer sees each one once, before the kernel runs it, and can
//! answer it without running it (one stop per emulated syscall). The same
//! filter is the safety net: should the replayer die or detach, a syscall
//! it did not answer fails with `ENOSYS` instead of running.
use std::{ffi::CString, fs::File, os::unix::fs::FileExt};

use libc::user_regs_struct;
use nix::{
    sys::{
        ptrace,
        signal::Signal,
        wait::{WaitPidFlag, WaitStatus, waitpid},
    },
    unistd::Pid,
};

use crate::ReplayError;

/// Kernel-internal restart codes a syscall can return to a signal.
pub const RESTART_CODES: std::ops::RangeInclusive<i64> = -516..=-512;

/// What the tracee stopped for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// About to make a syscall (seccomp stop): nothing has run yet.
    Syscall,
    /// A syscall the replayer let run has returned.
    SyscallExit,
    /// A signal is about to be delivered.
    Signal(Signal),
    /// The tracee exited with this code.
    Exited(i32),
    /// The tracee was killed by this signal.
    Killed(Signal, bool),
    /// Some other ptrace event (exec, stop).
    Other,
}

/// The launch of the program to replay.
pub struct Launch {
    pub exe: CString,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
    pub cwd: CString,
    /// Signals ignored at start (as the recorded process inherited them).
    pub ignored: Vec<i32>,
}

pub struct Tracee {
    /// The task (thread) id.
    pub pid: Pid,
    /// Its process (thread group) id.
    pub tgid: Pid,
    mem: File,
    alive: bool,
}

const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
const SECCOMP_RET_TRACE: u32 = 0x7ff0_0000;
const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;

/// The filter: every x86_64 syscall stops for the tracer; other ABIs kill.
fn filter() -> [libc::sock_filter; 4] {
    let stmt = |code: u16, k: u32| libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    };
    [
        // A = seccomp_data.arch
        stmt((libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16, 4),
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: AUDIT_ARCH_X86_64,
        },
        stmt((libc::BPF_RET | libc::BPF_K) as u16, SECCOMP_RET_TRACE),
        stmt(
            (libc::BPF_RET | libc::BPF_K) as u16,
            SECCOMP_RET_KILL_PROCESS,
        ),
    ]
}

impl Tracee {
    /// Forks, and in the child: own process group, no ASLR (replays of one
    /// bundle lay out alike), `/dev/null` as stdio, `cwd`, traced, the
    /// seccomp filter, then exec. Returns once the new program is loaded
    /// and stopped before its first instruction.
    pub fn launch(l: &Launch) -> Result<Self, ReplayError> {
        let mut argv: Vec<*const libc::c_char> = l.argv.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let mut envp: Vec<*const libc::c_char> = l.envp.iter().map(|a| a.as_ptr()).collect();
        envp.push(std::ptr::null());
        let filter = filter();
        let prog = libc::sock_fprog {
            len: filter.len() as u16,
            filter: filter.as_ptr() as *mut libc::sock_filter,
        };
        let devnull = c"/dev/null";
        // SAFETY: the child runs only async-signal-safe calls on memory
        // prepared before the fork, then execs or exits.
        let child = unsafe { libc::fork() };
        if child < 0 {
            return Err(ReplayError::Launch(format!(
                "fork: {}",
                std::io::Error::last_os_error()
            )));
        }
        if child == 0 {
            // SAFETY: see above; every pointer outlives the exec.
            unsafe {
                libc::setpgid(0, 0);
                // Default dispositions and no blocked signal, as a program
                // started from a shell has (tracectl ignores SIGPIPE).
                for sig in 1..65 {
                    if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                        libc::signal(sig, libc::SIG_DFL);
                    }
                }
                for &sig in &l.ignored {
                    libc::signal(sig, libc::SIG_IGN);
                }
                let mut none: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut none);
                libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
                libc::personality(libc::ADDR_NO_RANDOMIZE as libc::c_ulong);
                // rdtsc faults (SIGSEGV) in the program and every thread
                // and child of it, across exec, so that the replayer
                // answers it: the real counter would differ each replay.
                libc::prctl(libc::PR_SET_TSC, libc::PR_TSC_SIGSEGV, 0, 0, 0);
                let fd = libc::open(devnull.as_ptr(), libc::O_RDWR);
                if fd >= 0 {
                    for target in 0..3 {
                        libc::dup2(fd, target);
                    }
                }
                libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
                if libc::chdir(l.cwd.as_ptr()) != 0 {
                    libc::chdir(c"/".as_ptr());
                }
                if libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) != 0 {
                    libc::_exit(126);
                }
                libc::raise(libc::SIGSTOP);
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                    || libc::syscall(
                        libc::SYS_seccomp,
                        libc::SECCOMP_SET_MODE_FILTER,
                        0,
                        &prog as *const libc::sock_fprog,
                    ) != 0
                {
                    libc::_exit(126);
                }
                libc::execve(l.exe.as_ptr(), argv.as_ptr(), envp.as_ptr());
                libc::_exit(127);
            }
        }
        let pid = Pid::from_raw(child);
        let launch_err = |what: &str| ReplayError::Launch(format!("{what} ({pid})"));
        match waitpid(pid, Some(WaitPidFlag::__WALL)) {
            Ok(WaitStatus::Stopped(_, Signal::SIGSTOP)) => {}
            other => return Err(launch_err(&format!("the child did not stop: {other:?}"))),
        }
        ptrace::setoptions(
            pid,
            ptrace::Options::PTRACE_O_TRACESECCOMP
                | ptrace::Options::PTRACE_O_TRACESYSGOOD
                | ptrace::Options::PTRACE_O_TRACEEXEC
                | ptrace::Options::PTRACE_O_TRACECLONE
                | ptrace::Options::PTRACE_O_TRACEFORK
                | ptrace::Options::PTRACE_O_TRACEVFORK
                | ptrace::Options::PTRACE_O_EXITKILL,
        )
        .map_err(|e| launch_err(&format!("PTRACE_SETOPTIONS: {e}")))?;
        let mut t = Tracee {
            pid,
            tgid: pid,
            mem: open_mem(pid).map_err(|e| launch_err(&format!("opening /proc/{pid}/mem: {e}")))?,
            alive: true,
        };
        // Up to the exec: its seccomp stop runs it, then the exec event.
        t.cont(None)?;
        loop {
            match t.wait()? {
                Stop::Other => {
                    // The exec event, before the program's first instruction.
                    t.reopen_mem()?;
                    return Ok(t);
                }
                Stop::Exited(code) => {
                    t.alive = false;
                    return Err(ReplayError::Launch(format!(
                        "could not execute {} (the child exited with {code})",
                        l.exe.to_string_lossy()
                    )));
                }
                Stop::Killed(sig, _) => {
                    t.alive = false;
                    return Err(launch_err(&format!("the child was killed by {sig}")));
                }
                // The exec's syscall runs; so does the child's _exit if the
                // exec fails (then Exited above says so).
                Stop::Syscall | Stop::Signal(_) | Stop::SyscallExit => t.cont(None)?,
            }
        }
    }

    /// A task the kernel attached as it was made (a thread or a child
    /// process of a tracee), in thread group `tgid`.
    pub fn attached(pid: Pid, tgid: Pid) -> Result<Self, ReplayError> {
        let mem = open_mem(pid).map_err(|e| {
            ReplayError::Ptrace(format!("opening /proc/{pid}/mem of a new task: {e}"))
        })?;
        Ok(Tracee {
            pid,
            tgid,
            mem,
            alive: true,
        })
    }

    /// After an exec: /proc/PID/mem maps the new image.
    pub fn reopen_mem(&mut self) -> Result<(), ReplayError> {
        self.mem =
            open_mem(self.pid).map_err(|e| self.err("reopening /proc/PID/mem after an exec", e))?;
        Ok(())
    }

    fn err(&self, what: &str, e: impl std::fmt::Display) -> ReplayError {
        ReplayError::Ptrace(format!("{what} (pid {}): {e}", self.pid))
    }

    /// Waits for the next stop.
    pub fn wait(&mut self) -> Result<Stop, ReplayError> {
        let s = waitpid(self.pid, Some(WaitPidFlag::__WALL)).map_err(|e| self.err("waitpid", e))?;
        Ok(self.stopped(s))
    }

    /// What a wait status of this task says; an end is remembered.
    pub fn stopped(&mut self, s: WaitStatus) -> Stop {
        let stop = Stop::of(s);
        if matches!(stop, Stop::Exited(_) | Stop::Killed(..)) {
            self.alive = false;
        }
        stop
    }

    pub fn alive(&self) -> bool {
        self.alive
    }

    /// Waits for the end of this task (killed): its exit is reaped.
    pub fn reap(&mut self) {
        while self.alive {
            match waitpid(self.pid, Some(WaitPidFlag::__WALL)) {
                Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) | Err(_) => {
                    self.alive = false;
                }
                // Stops and events on its way out.
                Ok(_) => {}
            }
        }
    }

    /// This task is ended and reaped elsewhere: dropping it does nothing.
    pub fn forget(&mut self) {
        self.alive = false;
    }

    /// Resumes until the next syscall or signal. A tracee that is already
    /// gone (killed) is not an error: the next wait says how it ended.
    pub fn cont(&self, sig: Option<Signal>) -> Result<(), ReplayError> {
        match ptrace::cont(self.pid, sig) {
            Err(nix::errno::Errno::ESRCH) | Ok(()) => Ok(()),
            Err(e) => Err(self.err("PTRACE_CONT", e)),
        }
    }

    /// Resumes for one instruction.
    pub fn step(&self, sig: Option<Signal>) -> Result<(), ReplayError> {
        match ptrace::step(self.pid, sig) {
            Err(nix::errno::Errno::ESRCH) | Ok(()) => Ok(()),
            Err(e) => Err(self.err("PTRACE_SINGLESTEP", e)),
        }
    }

    /// Resumes a syscall stop so that the syscall runs, stopping at its exit.
    pub fn run_syscall(&mut self) -> Result<user_regs_struct, ReplayError> {
        self.run_syscall_seeing(&mut |_| {})
    }

    /// Runs a clone-like syscall for real: its registers at exit, and the
    /// new task's id (from the fork, vfork or clone event), if one was made.
    pub fn run_clone(&mut self) -> Result<(user_regs_struct, Option<Pid>), ReplayError> {
        let mut child = None;
        let pid = self.pid;
        let regs = self.run_syscall_seeing(&mut |ev| {
            if matches!(
                ev,
                libc::PTRACE_EVENT_CLONE | libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK
            ) && let Ok(msg) = ptrace::getevent(pid)
            {
                child = Some(Pid::from_raw(msg as i32));
            }
        })?;
        Ok((regs, child))
    }

    /// [`Self::run_syscall`], telling `event` of each ptrace event on the way.
    ///
    /// A call a signal interrupts ends in a restart code, and the kernel
    /// makes it again once the signal stop is passed (the replay holds the
    /// tracee's own signals): that is waited for too, so a real fork that
    /// met a child's SIGCHLD is not taken for a failed one.
    fn run_syscall_seeing(
        &mut self,
        event: &mut dyn FnMut(i32),
    ) -> Result<user_regs_struct, ReplayError> {
        ptrace::syscall(self.pid, None).map_err(|e| self.err("PTRACE_SYSCALL", e))?;
        // After a restart the next syscall stop is the entry of the call
        // made again, not an exit.
        let mut restarting = false;
        loop {
            let s =
                waitpid(self.pid, Some(WaitPidFlag::__WALL)).map_err(|e| self.err("waitpid", e))?;
            if let WaitStatus::PtraceEvent(_, _, ev) = s {
                event(ev);
            }
            match self.stopped(s) {
                Stop::SyscallExit if restarting => {
                    restarting = false;
                    ptrace::syscall(self.pid, None).map_err(|e| self.err("PTRACE_SYSCALL", e))?;
                }
                Stop::SyscallExit => {
                    let regs = self.regs()?;
                    if !RESTART_CODES.contains(&(regs.rax as i64)) {
                        return Ok(regs);
                    }
                    tracing::debug!("an executed syscall is restarted after a signal");
                    restarting = true;
                    ptrace::syscall(self.pid, None).map_err(|e| self.err("PTRACE_SYSCALL", e))?;
                }
                Stop::Signal(sig) => {
                    // Held until the syscall is done; the main loop sees it
                    // again when the tracee resumes.
                    tracing::debug!("signal {sig} during an executed syscall");
                    ptrace::syscall(self.pid, None).map_err(|e| self.err("PTRACE_SYSCALL", e))?;
                }
                Stop::Exited(c) => {
                    return Err(ReplayError::Ptrace(format!(
                        "the tracee exited ({c}) inside a syscall"
                    )));
                }
                Stop::Killed(s, _) => {
                    return Err(ReplayError::Ptrace(format!(
                        "the tracee was killed by {s} inside a syscall"
                    )));
                }
                Stop::Syscall | Stop::Other => {
                    ptrace::syscall(self.pid, None).map_err(|e| self.err("PTRACE_SYSCALL", e))?
                }
            }
        }
    }

    pub fn regs(&self) -> Result<user_regs_struct, ReplayError> {
        ptrace::getregs(self.pid).map_err(|e| self.err("PTRACE_GETREGS", e))
    }

    /// The code and address of the signal the tracee is stopped to take
    /// (its siginfo's `si_code` and first union word).
    pub fn siginfo(&self) -> Result<(i32, u64), ReplayError> {
        let si = ptrace::getsiginfo(self.pid).map_err(|e| self.err("PTRACE_GETSIGINFO", e))?;
        // SAFETY: si_addr shares its place with the other union members;
        // read as a plain word whichever was set.
        let addr = unsafe { si.si_addr() } as u64;
        Ok((si.si_code, addr))
    }

    /// At the signal-delivery stop of a SIGSYS replay sent: gives it the
    /// siginfo the kernel's `seccomp_send_sigsys` builds for a filter's
    /// `SECCOMP_RET_TRAP` (code SYS_SECCOMP, the filter's data as errno,
    /// the address after the syscall instruction, the syscall, the
    /// audit arch), which a handler may read.
    pub fn set_seccomp_siginfo(
        &self,
        errno: i32,
        call_addr: u64,
        syscall: i32,
    ) -> Result<(), ReplayError> {
        const SYS_SECCOMP: i32 = 1;
        const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
        // SAFETY: siginfo_t is plain data, for which zero is valid.
        let mut si: libc::siginfo_t = unsafe { std::mem::zeroed() };
        si.si_signo = libc::SIGSYS;
        si.si_errno = errno;
        si.si_code = SYS_SECCOMP;
        // The union's _sigsys member at byte 16: void *_call_addr, int
        // _syscall, unsigned int _arch (libc names no accessor for it).
        let p = (&mut si as *mut libc::siginfo_t).cast::<u8>();
        // SAFETY: the three writes are within the 128-byte siginfo_t.
        unsafe {
            p.add(16).cast::<u64>().write_unaligned(call_addr);
            p.add(24).cast::<i32>().write_unaligned(syscall);
            p.add(28).cast::<u32>().write_unaligned(AUDIT_ARCH_X86_64);
        }
        ptrace::setsiginfo(self.pid, &si).map_err(|e| self.err("PTRACE_SETSIGINFO", e))
    }

    pub fn set_regs(&self, r: user_regs_struct) -> Result<(), ReplayError> {
        ptrace::setregs(self.pid, r).map_err(|e| self.err("PTRACE_SETREGS", e))
    }

    /// Reads `len` bytes of the tracee's memory.
    pub fn read(&self, addr: u64, len: usize) -> Result<Vec<u8>, ReplayError> {
        let mut buf = vec![0; len];
        self.mem
            .read_exact_at(&mut buf, addr)
            .map_err(|e| self.err(&format!("reading {len} bytes at {addr:#x}"), e))?;
        Ok(buf)
    }

    pub fn read_u64(&self, addr: u64) -> Result<u64, ReplayError> {
        let b = self.read(addr, 8)?;
        Ok(u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    }

    /// Writes into the tracee's memory, read-only pages included (as a
    /// debugger does).
    pub fn write(&self, addr: u64, data: &[u8]) -> Result<(), ReplayError> {
        if data.is_empty() {
            return Ok(());
        }
        self.mem
            .write_all_at(data, addr)
            .map_err(|e| self.err(&format!("writing {} bytes at {addr:#x}", data.len()), e))
    }

    /// Runs one extra syscall in the tracee and puts its registers back as
    /// they were. `stub` is code that makes some syscall (a patched vDSO
    /// function); at its seccomp stop the syscall is swapped for this one.
    /// Used at the exec stop, where the kernel still sets `rax` itself.
    pub fn inject(&mut self, stub: u64, nr: i64, args: [u64; 6]) -> Result<i64, ReplayError> {
        let saved = self.regs()?;
        let mut r = saved;
        r.rip = stub;
        self.set_regs(r)?;
        self.cont(None)?;
        match self.wait()? {
            Stop::Syscall => {}
            other => {
                return Err(ReplayError::Ptrace(format!(
                    "an injected syscall {nr} did not stop at its entry: {other:?}"
                )));
            }
        }
        let mut r = self.regs()?;
        r.orig_rax = nr as u64;
        (r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9) =
            (args[0], args[1], args[2], args[3], args[4], args[5]);
        self.set_regs(r)?;
        let done = self.run_syscall()?;
        self.set_regs(saved)?;
        Ok(done.rax as i64)
    }

    /// Forks the tracee (a checkpoint): runs a `fork` through `stub` (code
    /// that makes a syscall) and puts the registers back. The tracee may be
    /// at any stop but a seccomp one (see [`Self::fork_at_syscall`]). The
    /// new process is returned stopped, traced, at its first stop.
    pub fn fork_via(&mut self, stub: u64) -> Result<Tracee, ReplayError> {
        let child = self.spawn_via(stub, libc::SYS_fork, [0; 6], "a checkpoint's fork")?;
        Tracee::attached(child, child)
    }

    /// Makes a new thread in the tracee's process (a thread of a
    /// checkpoint, made again): a `clone` through `stub`, with the thread
    /// library's clear-tid word at `clear_tid` (0 for none). The thread is
    /// returned stopped at its first stop, its registers a copy of this
    /// one's, for the caller to set.
    pub fn clone_thread_via(&mut self, stub: u64, clear_tid: u64) -> Result<Tracee, ReplayError> {
        const FLAGS: u64 = (libc::CLONE_VM
            | libc::CLONE_FS
            | libc::CLONE_FILES
            | libc::CLONE_SIGHAND
            | libc::CLONE_THREAD
            | libc::CLONE_SYSVSEM) as u64;
        let flags = if clear_tid != 0 {
            FLAGS | libc::CLONE_CHILD_CLEARTID as u64
        } else {
            FLAGS
        };
        // The stack stays the caller's: the thread runs none of this code.
        let args = [flags, 0, 0, clear_tid, 0, 0];
        let child = self.spawn_via(stub, libc::SYS_clone, args, "a thread's clone")?;
        Tracee::attached(child, self.tgid)
    }

    /// Runs a clone-like syscall `nr` through `stub` and puts the
    /// registers back: the new task, at its first stop.
    fn spawn_via(
        &mut self,
        stub: u64,
        nr: i64,
        args: [u64; 6],
        what: &str,
    ) -> Result<Pid, ReplayError> {
        let saved = self.regs()?;
        let mut r = saved;
        r.rip = stub;
        self.set_regs(r)?;
        self.resume_to_syscall(what)?;
        let mut r = self.regs()?;
        r.orig_rax = nr as u64;
        (r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9) =
            (args[0], args[1], args[2], args[3], args[4], args[5]);
        self.set_regs(r)?;
        let (done, child) = self.run_clone()?;
        self.set_regs(saved)?;
        let child = child.ok_or_else(|| {
            ReplayError::Ptrace(format!(
                "{what} made no task: {}",
                std::io::Error::from_raw_os_error(-(done.rax as i64) as i32)
            ))
        })?;
        match waitpid(child, Some(WaitPidFlag::__WALL)) {
            Ok(WaitStatus::Stopped(_, Signal::SIGSTOP)) => Ok(child),
            other => {
                let _ = nix::sys::signal::kill(child, Signal::SIGKILL);
                Err(ReplayError::Ptrace(format!(
                    "{what}: the new task did not stop as it was made: {other:?}"
                )))
            }
        }
    }

    /// The thread's whole FPU and vector state (x87, SSE, AVX, ...), as
    /// the kernel's XSAVE area.
    pub fn xstate(&self) -> Result<Vec<u8>, ReplayError> {
        let mut buf = vec![0u8; XSTATE_MAX];
        let n = self.xstate_regset(libc::PTRACE_GETREGSET, &mut buf, "PTRACE_GETREGSET")?;
        buf.truncate(n);
        Ok(buf)
    }

    /// Sets what [`Self::xstate`] read.
    pub fn set_xstate(&self, state: &[u8]) -> Result<(), ReplayError> {
        let mut buf = state.to_vec();
        self.xstate_regset(libc::PTRACE_SETREGSET, &mut buf, "PTRACE_SETREGSET")
            .map(|_| ())
    }

    /// `request` (get or set) of the XSAVE register set through `buf`: the
    /// bytes the kernel read or wrote.
    fn xstate_regset(
        &self,
        request: libc::c_uint,
        buf: &mut [u8],
        what: &str,
    ) -> Result<usize, ReplayError> {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: the kernel reads or writes at most iov_len bytes of buf
        // (which outlives the call) and sets iov_len to what it used.
        let r = unsafe {
            libc::ptrace(
                request,
                self.pid.as_raw(),
                NT_X86_XSTATE,
                &mut iov as *mut libc::iovec,
            )
        };
        if r < 0 {
            return Err(self.err(&format!("{what} (xstate)"), std::io::Error::last_os_error()));
        }
        Ok(iov.iov_len)
    }

    /// The thread's blocked signals.
    pub fn sigmask(&self) -> Result<u64, ReplayError> {
        let mut mask = 0u64;
        // SAFETY: PTRACE_GETSIGMASK writes 8 bytes (the size passed) there.
        let r = unsafe {
            libc::ptrace(
                PTRACE_GETSIGMASK,
                self.pid.as_raw(),
                8usize,
                &mut mask as *mut u64,
            )
        };
        if r < 0 {
            return Err(self.err("PTRACE_GETSIGMASK", std::io::Error::last_os_error()));
        }
        Ok(mask)
    }

    pub fn set_sigmask(&self, mask: u64) -> Result<(), ReplayError> {
        // SAFETY: PTRACE_SETSIGMASK reads 8 bytes (the size passed) there.
        let r = unsafe {
            libc::ptrace(
                PTRACE_SETSIGMASK,
                self.pid.as_raw(),
                8usize,
                &mask as *const u64,
            )
        };
        if r < 0 {
            return Err(self.err("PTRACE_SETSIGMASK", std::io::Error::last_os_error()));
        }
        Ok(())
    }

    /// [`Self::fork_via`] at a seccomp stop: the pending syscall is put
    /// off (skipped) for the fork and made again after it, so the tracee
    /// is back at the same stop with the same registers.
    pub fn fork_at_syscall(&mut self, stub: u64) -> Result<Tracee, ReplayError> {
        let at = self.regs()?;
        let mut skip = at;
        skip.orig_rax = u64::MAX;
        self.set_regs(skip)?;
        let child = self.fork_via(stub)?;
        self.restart_syscall(&at)?;
        Ok(child)
    }

    /// Takes the tracee (at any stop) to the seccomp stop of the syscall
    /// whose stop registers are `at`: it makes the syscall again.
    pub fn restart_syscall(&mut self, at: &user_regs_struct) -> Result<(), ReplayError> {
        let mut again = *at;
        again.rip -= 2;
        again.rax = at.orig_rax;
        self.set_regs(again)?;
        self.resume_to_syscall("a restarted syscall")
    }

    /// Resumes the tracee up to its next seccomp stop. Signals on the way
    /// (a checkpoint gets SIGCHLD when a copy of it ends) are dropped:
    /// a checkpoint or a copy being readied runs none of its own code.
    fn resume_to_syscall(&mut self, what: &str) -> Result<(), ReplayError> {
        self.cont(None)?;
        loop {
            match self.wait()? {
                Stop::Syscall => return Ok(()),
                Stop::Signal(_) => self.cont(None)?,
                other => {
                    return Err(ReplayError::Ptrace(format!(
                        "{what} did not stop at its entry: {other:?}"
                    )));
                }
            }
        }
    }

    /// Reads x86 debug register `n` (DR0-DR7).
    pub fn debug_reg(&self, n: usize) -> Result<u64, ReplayError> {
        ptrace::read_user(self.pid, debug_reg_offset(n) as ptrace::AddressType)
            .map(|v| v as u64)
            .map_err(|e| self.err("PTRACE_PEEKUSER (debug register)", e))
    }

    /// Writes x86 debug register `n` (DR0-DR7).
    pub fn set_debug_reg(&self, n: usize, v: u64) -> Result<(), ReplayError> {
        ptrace::write_user(
            self.pid,
            debug_reg_offset(n) as ptrace::AddressType,
            v as libc::c_long,
        )
        .map_err(|e| self.err("PTRACE_POKEUSER (debug register)", e))
    }

    /// Sends a signal to this thread of the tracee (it is delivered at its
    /// next stop).
    pub fn kill(&self, sig: Signal) -> Result<(), ReplayError> {
        // SAFETY: a plain syscall on integer arguments.
        let r = unsafe {
            libc::syscall(
                libc::SYS_tgkill,
                self.tgid.as_raw(),
                self.pid.as_raw(),
                sig as i32,
            )
        };
        if r != 0 {
            return Err(self.err("tgkill", std::io::Error::last_os_error()));
        }
        Ok(())
    }

    /// At a seccomp stop: the syscall is skipped now and made again when
    /// the tracee next runs (back on its `syscall` instruction).
    fn put_off_syscall(&self) -> Result<(), ReplayError> {
        let mut r = self.regs()?;
        let nr = r.orig_rax;
        r.orig_rax = u64::MAX;
        r.rax = nr;
        r.rip -= 2;
        self.set_regs(r)
    }

    /// Leaves the tracee stopped for a debugger, about to retry the
    /// syscall it is stopped at: the syscall does not run now, and if the
    /// tracee is resumed without a tracer the filter fails it with ENOSYS.
    pub fn leave_stopped(mut self) -> Result<Pid, ReplayError> {
        self.put_off_syscall()?;
        // The signal argument of PTRACE_DETACH is ignored at an event stop
        // (seccomp): the stop is queued first, and taken as it resumes.
        self.kill(Signal::SIGSTOP)?;
        ptrace::detach(self.pid, None).map_err(|e| self.err("PTRACE_DETACH", e))?;
        self.alive = false;
        wait_until_stopped(self.pid);
        Ok(self.pid)
    }

    /// Lets go of one thread of a process being left stopped (SIGSTOP
    /// already sent to it): at a syscall stop, about to retry that syscall,
    /// as [`Self::leave_stopped`] does; at another stop, where it is.
    pub fn let_go(mut self, at_syscall: bool) -> Result<(), ReplayError> {
        if at_syscall {
            self.put_off_syscall()?;
        }
        self.alive = false;
        ptrace::detach(self.pid, None).map_err(|e| self.err("PTRACE_DETACH", e))
    }

    /// Leaves the tracee stopped where a signal it is getting stopped it
    /// (a fault): the signal is dropped, SIGSTOP taken instead.
    pub fn leave_stopped_at_signal(mut self) -> Result<Pid, ReplayError> {
        ptrace::detach(self.pid, Signal::SIGSTOP).map_err(|e| self.err("PTRACE_DETACH", e))?;
        self.alive = false;
        wait_until_stopped(self.pid);
        Ok(self.pid)
    }
}

/// After a detach with SIGSTOP the process runs until it takes the signal:
/// the replay says it is left stopped once it is (bounded: a process that
/// ends instead is not waited for).
fn wait_until_stopped(pid: Pid) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while std::time::Instant::now() < deadline {
        match proc_state(pid) {
            Some('T' | 't' | 'Z' | 'X') | None => return,
            Some(_) => std::thread::sleep(std::time::Duration::from_millis(1)),
        }
    }
}

/// The process's state letter in /proc/PID/stat (`None`: it is gone).
pub fn proc_state(pid: Pid) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The state follows the command name, which may hold spaces and ')'.
    stat.rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next())
}

impl Stop {
    /// The stop a wait status reports.
    pub fn of(s: WaitStatus) -> Stop {
        match s {
            WaitStatus::PtraceEvent(_, _, ev) if ev == libc::PTRACE_EVENT_SECCOMP => Stop::Syscall,
            WaitStatus::PtraceSyscall(_) => Stop::SyscallExit,
            WaitStatus::PtraceEvent(..) => Stop::Other,
            WaitStatus::Stopped(_, sig) => Stop::Signal(sig),
            WaitStatus::Exited(_, code) => Stop::Exited(code),
            WaitStatus::Signaled(_, sig, core) => Stop::Killed(sig, core),
            _ => Stop::Other,
        }
    }
}

/// Waits for a stop of any tracee, up to `timeout`: `None` when none came.
/// SIGCHLD must be blocked in the calling thread (it is what wakes it).
pub fn wait_any(timeout: std::time::Duration) -> Result<Option<WaitStatus>, ReplayError> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match waitpid(None, Some(WaitPidFlag::__WALL | WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(s) => return Ok(Some(s)),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(ReplayError::Ptrace(format!("waitpid: {e}"))),
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        // A SIGCHLD comes with each stop; a short bound covers one taken by
        // another thread of this process.
        let nap = left.min(std::time::Duration::from_millis(20));
        let ts = libc::timespec {
            tv_sec: nap.as_secs() as libc::time_t,
            tv_nsec: nap.subsec_nanos() as libc::c_long,
        };
        // SAFETY: a valid signal set and timespec on the stack.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGCHLD);
            libc::sigtimedwait(&set, std::ptr::null_mut(), &ts);
        }
    }
}

/// Blocks SIGCHLD in this thread while alive (so [`wait_any`] can wait for
/// it), and restores the mask after.
pub struct ChildSignalsBlocked(libc::sigset_t);

impl ChildSignalsBlocked {
    pub fn new() -> Self {
        // SAFETY: valid signal sets on the stack.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGCHLD);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            Self(old)
        }
    }
}

impl Default for ChildSignalsBlocked {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for ChildSignalsBlocked {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved in new().
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut()) };
    }
}

fn open_mem(pid: Pid) -> std::io::Result<File> {
    File::options()
        .read(true)
        .write(true)
        .open(format!("/proc/{pid}/mem"))
}

const NT_X86_XSTATE: usize = 0x202;
/// Larger than any XSAVE area (AVX-512 with AMX tiles is about 11 KiB).
const XSTATE_MAX: usize = 16 * 1024;
const PTRACE_GETSIGMASK: libc::c_uint = 0x420a;
const PTRACE_SETSIGMASK: libc::c_uint = 0x420b;

/// Keeps the replayer, and the tracees it starts from now on (they
/// inherit it), on the CPU it runs on. A ptrace stop is a wakeup of the
/// other side: on one CPU it is a context switch, across two it wakes an
/// idle CPU, which on a VM costs several times the stop itself (measured
/// here: 13 µs against 70 to 160 µs per syscall on an idle 2-CPU VM). One
/// task runs at a time anyway. As rr does.
pub fn pin_to_one_cpu() {
    // SAFETY: sched_getcpu has no preconditions; the set is a plain
    // bitmask owned here, passed with its size.
    unsafe {
        let cpu = libc::sched_getcpu();
        if cpu < 0 {
            return;
        }
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            tracing::debug!(
                "pinning the replay to CPU {cpu}: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// Offset of `u_debugreg[n]` in `struct user` (x86_64).
fn debug_reg_offset(n: usize) -> usize {
    std::mem::offset_of!(libc::user, u_debugreg) + 8 * n
}

impl Drop for Tracee {
    /// A replay that ends early takes its tracee with it.
    fn drop(&mut self) {
        if self.alive {
            let _ = nix::sys::signal::kill(self.pid, Signal::SIGKILL);
            let _ = waitpid(self.pid, Some(WaitPidFlag::__WALL));
        }
    }
}

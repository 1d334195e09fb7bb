//! Process lifecycle events: signal delivery and death by a fatal signal.
use std::{
    io::Write,
    process::{Command, Stdio},
    time::Duration,
};

use tracer_proto as pb;
use tracer_tests::{Daemon, Guard};

#[test]
fn a_fatal_signal_is_recorded_as_delivered_and_as_the_exit_cause() {
    let mut sh = Guard(Some(
        Command::new("/bin/sh")
            // The first SIGUSR1 is caught, the second (default action) kills.
            .args([
                "-c",
                "read x; trap ':' USR1; kill -USR1 $$; trap - USR1; kill -USR1 $$; sleep 5",
            ])
            .stdin(Stdio::piped())
            .spawn()
            .expect("spawn sh"),
    ));
    let pid = sh.0.as_ref().expect("child").id();
    let mut daemon = Daemon::start(&["--pid", &pid.to_string()]);
    let child = sh.0.as_mut().expect("child");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"go\n")
        .expect("release");
    let status = sh.wait(Duration::from_secs(30));
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGUSR1));
    daemon.stop();

    let events = daemon.events();
    let sigs: Vec<pb::Signal> = events
        .iter()
        .filter_map(|e| match &e.kind {
            Some(pb::event::Kind::Signal(s)) if e.pid == pid => Some(*s),
            _ => None,
        })
        .collect();
    let caught = sigs.first().expect("signal delivery recorded");
    assert_eq!(caught.signo, libc::SIGUSR1 as u32, "{sigs:?}");
    assert_eq!(caught.sender_pid, pid, "sent by the shell itself");
    assert_eq!(caught.code, 0, "SI_USER");
    // A fatal signal is turned by the kernel into a group exit, which it
    // delivers as SIGKILL; the exit event carries the real cause.
    assert_eq!(
        sigs.last().map(|s| s.signo),
        Some(libc::SIGKILL as u32),
        "{sigs:?}"
    );
    let exit = events
        .iter()
        .find_map(|e| match &e.kind {
            Some(pb::event::Kind::Exit(x)) if e.pid == pid && x.group_dead => Some(*x),
            _ => None,
        })
        .expect("exit recorded");
    assert_eq!(exit.signal, libc::SIGUSR1 as u32, "{exit:?}");
    assert_eq!(exit.exit_code, 0);
    let line = tracer_format::line(&pb::Event {
        pid,
        tid: pid,
        kind: Some(pb::event::Kind::Exit(exit)),
        ..Default::default()
    });
    assert!(line.ends_with("+++ killed by SIGUSR1 +++"), "{line}");
}

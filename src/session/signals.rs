//! Signals: Ctrl-C and SIGTERM cancel a run or a sweep (twice: exit at once), and a write past
//! the file-size limit fails instead of killing the process.

use tokio_util::sync::CancellationToken;

/// A write past the file-size limit (`ulimit -f`) raises SIGXFSZ, whose default action kills the
/// process mid-run with no word said. Ignored, the write fails with EFBIG instead, and the run
/// stops changing things and says where its record ends (see [`AuditLog`]).
pub(crate) fn ignore_file_size_signal() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to SIG_IGN, before any thread is started, installs
    // no handler code and touches no memory of ours.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// First Ctrl-C or SIGTERM: cancel (stop scheduling, cancel running steps at their next safe
/// point). Second: exit at once, saying how to continue (`continue_later`, e.g.
/// ``"`teardown resume RUN_ID`"``).
pub(crate) async fn watch_signals(cancel: CancellationToken, continue_later: String) {
    let mut interrupts = 0;
    loop {
        wait_for_signal().await;
        interrupts += 1;
        if interrupts == 1 {
            eprintln!("\ninterrupted: finishing what is safe to finish, starting nothing new (Ctrl-C again to exit at once)");
            cancel.cancel();
        } else {
            eprintln!("\ninterrupted twice: exiting now; to continue: {continue_later}");
            std::process::exit(130);
        }
    }
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("install the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

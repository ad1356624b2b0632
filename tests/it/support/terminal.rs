//! A pseudo-terminal, for the tests that need one stream of the binary to be a terminal and the
//! others not (`teardown preview PLAN 2> file` typed at a terminal): the binary gets the
//! terminal's device as whichever of stdout and stderr the test says, and the test reads what was
//! drawn on it, escape codes included. Opened with the POSIX calls (posix_openpt, grantpt,
//! unlockpt, ptsname_r) of `libc`, which the crate depends on already; a pty crate would spawn the
//! child with all three streams on the terminal, which is the one case these tests do not need.

use std::ffi::CStr;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::fd::FromRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A pseudo-terminal of 160 columns and 40 rows: the controlling side (`master`) that the test
/// reads, and the terminal device (`device`) that the child writes to.
pub struct Terminal {
    master: File,
    device: File,
}

/// Opens a pseudo-terminal.
pub fn open() -> Terminal {
    // SAFETY: plain POSIX calls on a descriptor this function owns; every result is checked.
    unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(
            master >= 0,
            "posix_openpt: {}",
            std::io::Error::last_os_error()
        );
        let master_file = File::from_raw_fd(master);
        assert_eq!(libc::grantpt(master), 0, "grantpt");
        assert_eq!(libc::unlockpt(master), 0, "unlockpt");
        let mut name = [0 as libc::c_char; 256];
        assert_eq!(
            libc::ptsname_r(master, name.as_mut_ptr(), name.len()),
            0,
            "ptsname_r"
        );
        let size = libc::winsize {
            ws_row: 40,
            ws_col: 160,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        assert_eq!(
            libc::ioctl(master, libc::TIOCSWINSZ, &size),
            0,
            "TIOCSWINSZ"
        );
        let path = CStr::from_ptr(name.as_ptr()).to_str().unwrap().to_string();
        let device = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(&path)
            .unwrap_or_else(|e| panic!("open {path}: {e}"));
        Terminal {
            master: master_file,
            device,
        }
    }
}

impl Terminal {
    /// The terminal device, to give the child as one of its streams.
    pub fn stream(&self) -> Stdio {
        Stdio::from(self.device.try_clone().unwrap())
    }

    /// Runs `command` (whose streams the caller set, some of them from [`Terminal::stream`]) to
    /// its end, at most `limit`, and returns its status and everything drawn on the terminal.
    pub fn run(self, mut command: Command, limit: Duration) -> (ExitStatus, String) {
        let mut child = command.spawn().expect("run teardown");
        // Only the child holds the device now: once it exits, reading the master ends (EIO).
        drop(command);
        drop(self.device);
        let mut master = self.master;
        let reader = std::thread::spawn(move || {
            let mut drawn = Vec::new();
            let mut buffer = [0u8; 4096];
            loop {
                match master.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => drawn.extend_from_slice(&buffer[..n]),
                }
            }
            String::from_utf8_lossy(&drawn).to_string()
        });
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > limit {
                child.kill().unwrap();
                child.wait().unwrap();
                panic!("teardown did not end within {limit:?} on a terminal");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        (status, reader.join().unwrap())
    }
}

/// True when `text` holds an SGR sequence that sets a colour or bold (`ESC [ ... m` other than a
/// plain reset): what NO_COLOR must remove. Cursor movement and line clearing are not colour.
pub fn has_colour(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(start) = text[i..].find("\x1b[").map(|p| p + i) {
        let mut end = start + 2;
        while end < bytes.len() && (bytes[end].is_ascii_digit() || bytes[end] == b';') {
            end += 1;
        }
        if end < bytes.len() && bytes[end] == b'm' {
            let params = &text[start + 2..end];
            if !params.is_empty() && params.split(';').any(|p| p != "0") {
                return true;
            }
        }
        i = start + 2;
    }
    false
}

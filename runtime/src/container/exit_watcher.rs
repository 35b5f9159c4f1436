//! One thread that waits for the end of any number of processes, each held by a pidfd (readable
//! once its process has ended), and runs a callback for each as it ends: exits are events, not
//! polling, and no thread per container.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rustix::event::epoll;

use crate::RuntimeError;

type OnExit = Box<dyn FnOnce() + Send>;

/// Processes being waited for, by epoll key: their pidfd and what to do when they end.
type Waiting = Arc<Mutex<HashMap<u64, (OwnedFd, OnExit)>>>;

pub struct ExitWatcher {
    epoll: Arc<OwnedFd>,
    waiting: Waiting,
    next_key: AtomicU64,
}

impl std::fmt::Debug for ExitWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExitWatcher")
            .field("epoll", &self.epoll)
            .finish_non_exhaustive()
    }
}

impl ExitWatcher {
    /// Starts the waiting thread.
    pub fn start() -> Result<Self, RuntimeError> {
        let epoll = Arc::new(
            epoll::create(epoll::CreateFlags::CLOEXEC)
                .map_err(|e| RuntimeError::io("epoll_create", "exit watcher")(e.into()))?,
        );
        let waiting = Waiting::default();
        let thread_epoll = Arc::clone(&epoll);
        let thread_waiting = Arc::clone(&waiting);
        std::thread::Builder::new()
            .name("crius-exits".into())
            .spawn(move || wait_for_exits(&thread_epoll, &thread_waiting))
            .map_err(RuntimeError::io("spawn thread", "crius-exits"))?;
        Ok(ExitWatcher {
            epoll,
            waiting,
            next_key: AtomicU64::new(0),
        })
    }

    /// Runs `on_exit` on the watcher's thread once the process of `pidfd` has ended (at once if
    /// it already has).
    pub fn watch(
        &self,
        pidfd: OwnedFd,
        on_exit: impl FnOnce() + Send + 'static,
    ) -> Result<(), RuntimeError> {
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        epoll::add(
            &*self.epoll,
            &pidfd,
            epoll::EventData::new_u64(key),
            epoll::EventFlags::IN,
        )
        .map_err(|e| RuntimeError::io("epoll_ctl", "exit watcher")(e.into()))?;
        waiting.insert(key, (pidfd, Box::new(on_exit)));
        Ok(())
    }
}

fn wait_for_exits(epoll: &OwnedFd, waiting: &Waiting) {
    let mut events = Vec::with_capacity(64);
    loop {
        events.clear();
        match epoll::wait(epoll, rustix::buffer::spare_capacity(&mut events), None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                tracing::error!(error = %e, "waiting for process exits; exits are no longer seen");
                return;
            }
        }
        for event in &events {
            let ended = waiting
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&event.data.u64());
            if let Some((pidfd, on_exit)) = ended {
                // Closing the pidfd also takes it out of the epoll set.
                drop(pidfd);
                on_exit();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::process;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn each_watched_process_is_reported_once_when_it_ends() {
        let watcher = ExitWatcher::start().unwrap();
        let (ended, reports) = mpsc::channel();
        let mut children = Vec::new();
        for n in 0..3 {
            let child = std::process::Command::new("sleep")
                .arg(format!("0.{}", n + 1))
                .spawn()
                .unwrap();
            let identity = process::identify(child.id() as i32).unwrap();
            let pidfd = process::open(identity).unwrap().unwrap();
            let ended = ended.clone();
            watcher
                .watch(pidfd, move || ended.send(n).unwrap())
                .unwrap();
            children.push(child);
        }
        for mut child in children {
            child.wait().unwrap();
        }
        let mut seen: Vec<i32> = (0..3)
            .map(|_| reports.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, vec![0, 1, 2]);
        assert!(reports.recv_timeout(Duration::from_millis(100)).is_err());
    }
}

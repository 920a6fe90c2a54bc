//! CPU pinning for `--deployments`: the load generator, PostgreSQL and each server replica on
//! CPUs of their own, when the machine has enough of them, so that a second replica shows the
//! capacity its own cores add rather than the cost of sharing the same ones.

use std::fmt;

/// Which CPUs each part of a deployment runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuLayout {
    pub load_generator: Vec<usize>,
    pub postgres: Vec<usize>,
    /// One set per replica; the SQLite server takes the first.
    pub replicas: Vec<Vec<usize>>,
}

/// Why the processes were left to share every CPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotPinned {
    pub available: usize,
    pub needed: usize,
}

impl fmt::Display for NotPinned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CPU pinning skipped: this machine offers {} CPU(s) and pinning needs at least {} \
             (one for the load generator, one for PostgreSQL, one per replica); the servers, \
             PostgreSQL and the load generator share every CPU",
            self.available, self.needed
        )
    }
}

impl fmt::Display for CpuLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CPUs pinned: load generator {:?}, PostgreSQL {:?} (a private instance)",
            self.load_generator, self.postgres
        )?;
        for (index, cpus) in self.replicas.iter().enumerate() {
            write!(f, ", replica {} {:?}", index + 1, cpus)?;
        }
        Ok(())
    }
}

impl CpuLayout {
    /// Splits `cpus` into contiguous groups: one for the load generator, one for PostgreSQL and
    /// one per replica, the first groups taking the remainder. Groups are as large as the CPUs
    /// allow, so every part keeps the same share from one deployment to the next.
    pub fn split(cpus: &[usize], replicas: usize) -> Result<CpuLayout, NotPinned> {
        let groups = replicas + 2;
        if cpus.len() < groups {
            return Err(NotPinned {
                available: cpus.len(),
                needed: groups,
            });
        }
        let (size, extra) = (cpus.len() / groups, cpus.len() % groups);
        let mut rest = cpus;
        let mut split: Vec<Vec<usize>> = (0..groups)
            .map(|index| {
                let (group, after) = rest.split_at(size + usize::from(index < extra));
                rest = after;
                group.to_vec()
            })
            .collect();
        let replicas = split.split_off(2);
        let postgres = split.pop().expect("two groups before the replicas");
        let load_generator = split.pop().expect("the first group");
        Ok(CpuLayout {
            load_generator,
            postgres,
            replicas,
        })
    }
}

/// The CPUs this process may run on.
pub fn available_cpus() -> Vec<usize> {
    // SAFETY: `set` is a plain bit set that `sched_getaffinity` fills; its size is passed.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
            .collect()
    }
}

/// Pins every thread of process `pid` to `cpus`; threads it starts later inherit the setting
/// from the thread that starts them.
pub fn pin_process(pid: u32, cpus: &[usize]) -> anyhow::Result<()> {
    // SAFETY: as above; `CPU_SET` only writes bits within the set.
    let set = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &cpu in cpus {
            libc::CPU_SET(cpu, &mut set);
        }
        set
    };
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let Some(tid) = task?
            .file_name()
            .to_str()
            .and_then(|t| t.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: `set` outlives the call; a thread that ended meanwhile fails with ESRCH.
        let pinned =
            unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) };
        let error = std::io::Error::last_os_error();
        if pinned != 0 && error.raw_os_error() != Some(libc::ESRCH) {
            anyhow::bail!("pinning thread {tid} of process {pid} to {cpus:?}: {error}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_few_cpus_are_reported_not_shared_out() {
        assert_eq!(
            CpuLayout::split(&[0, 1], 2),
            Err(NotPinned {
                available: 2,
                needed: 4
            })
        );
    }

    #[test]
    fn every_part_gets_cpus_of_its_own() {
        let layout = CpuLayout::split(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 2).unwrap();
        assert_eq!(layout.load_generator, vec![0, 1, 2]);
        assert_eq!(layout.postgres, vec![3, 4, 5]);
        assert_eq!(layout.replicas, vec![vec![6, 7], vec![8, 9]]);
    }
}

//! Which process writes a run, and whether it still lives: so a run whose process was
//! killed is shown as `interrupted`, not `running` forever.
//!
//! A process is named by the boot it runs in, its pid and its start time (Linux's
//! `/proc/PID/stat` field 22, in clock ticks since boot), so a pid the kernel handed out
//! again after the writer died is not mistaken for it. Where `/proc` is missing nothing is
//! known, and runs are left as they are.

/// This process, as `BOOT:PID:START`; `None` where the platform does not say.
pub(crate) fn current() -> Option<String> {
    let pid = std::process::id();
    Some(format!("{}:{pid}:{}", boot_id()?, start_ticks(pid)?))
}

/// Whether the process `writer` (from [`current`]) is known to have ended. `false` when
/// it lives or nothing can be known.
pub(crate) fn has_ended(writer: &str) -> bool {
    let mut parts = writer.splitn(3, ':');
    let (Some(boot), Some(pid), Some(start)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let Some(now_boot) = boot_id() else {
        return false;
    };
    if boot != now_boot {
        return true; // the machine restarted since
    }
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    match start_ticks(pid) {
        Some(ticks) => ticks.to_string() != start,
        None => true,
    }
}

/// The pid named by `writer`, for messages.
pub(crate) fn pid(writer: &str) -> Option<&str> {
    writer.split(':').nth(1)
}

fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty() && !s.contains(':'))
}

/// Field 22 of `/proc/PID/stat`; the command name (field 2) may hold spaces and
/// parentheses, so fields are counted from the last `)`.
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the name: field 3 (state) is the first; field 22 is the 20th.
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_lives_and_a_dead_one_is_known_dead() {
        let Some(me) = current() else {
            return; // no /proc here
        };
        assert!(!has_ended(&me));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let child_id = format!(
            "{}:{pid}:{}",
            boot_id().unwrap(),
            start_ticks(pid).unwrap_or(0)
        );
        child.wait().unwrap();
        assert!(has_ended(&child_id));
        // The same pid with another start time is another process.
        let parts: Vec<&str> = me.split(':').collect();
        assert!(has_ended(&format!("{}:{}:1", parts[0], parts[1])));
        assert!(has_ended(&format!(
            "another-boot:{}:{}",
            parts[1], parts[2]
        )));
        assert!(!has_ended("garbage"));
    }
}

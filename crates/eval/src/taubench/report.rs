//! pass^k and the run report.

/// One task's trial rewards.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskTrials {
    /// The task's id.
    pub task_index: usize,
    /// Reward of each trial.
    pub rewards: Vec<f64>,
}

/// pass^k for k = 1..=n: the mean over tasks of C(c, k) / C(n, k), where c of a task's n
/// trials succeeded (reward within 1e-6 of 1), the unbiased estimate that k independent
/// trials all succeed. `n` is the smallest trial count of any task.
pub fn pass_hat_k(tasks: &[TaskTrials]) -> Vec<f64> {
    let Some(n) = tasks.iter().map(|t| t.rewards.len()).min() else {
        return Vec::new();
    };
    (1..=n)
        .map(|k| {
            let sum: f64 = tasks
                .iter()
                .map(|t| {
                    let trials = &t.rewards[..n];
                    let c = trials.iter().filter(|r| (**r - 1.0).abs() <= 1e-6).count();
                    choose(c, k) / choose(n, k)
                })
                .sum();
            sum / tasks.len() as f64
        })
        .collect()
}

/// C(n, k) as a float (0 when k > n).
fn choose(n: usize, k: usize) -> f64 {
    if k > n {
        return 0.0;
    }
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(i: usize, r: &[f64]) -> TaskTrials {
        TaskTrials {
            task_index: i,
            rewards: r.to_vec(),
        }
    }

    #[test]
    fn pass_hat_k_is_the_unbiased_estimate() {
        // Task 0: 3 of 4; task 1: 4 of 4; task 2: 0 of 4.
        let tasks = [
            t(0, &[1.0, 0.0, 1.0, 1.0]),
            t(1, &[1.0; 4]),
            t(2, &[0.0; 4]),
        ];
        let p = pass_hat_k(&tasks);
        let want = [
            (0.75 + 1.0) / 3.0,
            (3.0 / 6.0 + 1.0) / 3.0,
            (1.0 / 4.0 + 1.0) / 3.0,
            (0.0 + 1.0) / 3.0,
        ];
        assert_eq!(p.len(), 4);
        for (got, want) in p.iter().zip(want) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
        assert!(p.windows(2).all(|w| w[0] >= w[1]));
        assert!(pass_hat_k(&[]).is_empty());
    }
}

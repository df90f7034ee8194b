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

/// A whole evaluation run: every episode and what they add up to.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Report {
    /// Domain name.
    pub domain: String,
    /// Split name.
    pub split: String,
    /// The agent's name.
    pub agent: String,
    /// The user simulator's name.
    pub user: String,
    /// Trials per task.
    pub trials: usize,
    /// Tasks run.
    pub tasks: usize,
    /// Mean reward over all episodes.
    pub average_reward: f64,
    /// pass^1 … pass^trials.
    pub pass_hat_k: Vec<f64>,
    /// How episodes ended, with counts.
    pub ended: std::collections::BTreeMap<String, usize>,
    /// Mean wall time of an episode, seconds.
    pub mean_episode_s: f64,
    /// Agent tokens (prompt + completion) over all episodes.
    pub agent_tokens: u64,
    /// User-simulator tokens over all episodes.
    pub user_tokens: u64,
    /// Agent tokens per successful episode (`None` when none succeeded).
    pub agent_tokens_per_success: Option<f64>,
    /// The agent's cost in USD, when prices were given.
    pub agent_cost_usd: Option<f64>,
    /// The agent's cost per successful episode in USD, when prices were given.
    pub cost_per_success_usd: Option<f64>,
    /// Wall time of the whole run, seconds.
    pub wall_s: f64,
    /// Every episode, by task then trial.
    pub episodes: Vec<super::episode::EpisodeResult>,
}

impl Report {
    /// Sums up `episodes` (any order); `prices` are the agent model's USD per million prompt
    /// and completion tokens.
    pub fn new(
        data: &super::DomainData,
        agent: String,
        user: String,
        trials: usize,
        mut episodes: Vec<super::episode::EpisodeResult>,
        wall: std::time::Duration,
        prices: Option<(f64, f64)>,
    ) -> Self {
        episodes.sort_by_key(|e| (e.task_index, e.trial));
        let mut per_task: Vec<TaskTrials> = Vec::new();
        for e in &episodes {
            match per_task.last_mut() {
                Some(t) if t.task_index == e.task_index => t.rewards.push(e.reward),
                _ => per_task.push(TaskTrials {
                    task_index: e.task_index,
                    rewards: vec![e.reward],
                }),
            }
        }
        let n = episodes.len().max(1) as f64;
        let mut ended = std::collections::BTreeMap::new();
        for e in &episodes {
            *ended.entry(e.ended.clone()).or_insert(0) += 1;
        }
        let tokens = |u: &agentry_llm::Usage| u.prompt_tokens + u.completion_tokens;
        let agent_tokens: u64 = episodes.iter().map(|e| tokens(&e.agent_usage)).sum();
        let successes = episodes.iter().filter(|e| e.reward >= 1.0 - 1e-6).count();
        let agent_cost_usd = prices.map(|(input, output)| {
            episodes
                .iter()
                .map(|e| {
                    (e.agent_usage.prompt_tokens as f64 * input
                        + e.agent_usage.completion_tokens as f64 * output)
                        / 1e6
                })
                .sum::<f64>()
        });
        Self {
            domain: data.domain.name().into(),
            split: data.split.as_str().into(),
            agent,
            user,
            trials,
            tasks: per_task.len(),
            average_reward: episodes.iter().map(|e| e.reward).sum::<f64>() / n,
            pass_hat_k: pass_hat_k(&per_task),
            ended,
            mean_episode_s: episodes.iter().map(|e| e.wall_ms as f64).sum::<f64>() / n / 1e3,
            agent_tokens,
            user_tokens: episodes.iter().map(|e| tokens(&e.user_usage)).sum(),
            agent_tokens_per_success: (successes > 0)
                .then(|| agent_tokens as f64 / successes as f64),
            agent_cost_usd,
            cost_per_success_usd: agent_cost_usd
                .filter(|_| successes > 0)
                .map(|c| c / successes as f64),
            wall_s: wall.as_secs_f64(),
            episodes,
        }
    }

    /// The report as Markdown: the summary, pass^k, and one row per task.
    pub fn markdown(&self) -> String {
        use std::fmt::Write as _;
        let mut md = String::new();
        let _ = writeln!(
            md,
            "# τ-bench {} ({}): {}\n\nUser simulator: {}. {} tasks × {} trials, {:.1} s.\n",
            self.domain, self.split, self.agent, self.user, self.tasks, self.trials, self.wall_s
        );
        let _ = writeln!(md, "| measure | value |\n|---|---|");
        let _ = writeln!(md, "| average reward | {:.4} |", self.average_reward);
        for (k, p) in self.pass_hat_k.iter().enumerate() {
            let _ = writeln!(md, "| pass^{} | {p:.4} |", k + 1);
        }
        let _ = writeln!(md, "| mean episode | {:.2} s |", self.mean_episode_s);
        let _ = writeln!(md, "| agent tokens | {} |", self.agent_tokens);
        if let Some(t) = self.agent_tokens_per_success {
            let _ = writeln!(md, "| agent tokens per success | {t:.0} |");
        }
        if let Some(c) = self.agent_cost_usd {
            let _ = writeln!(md, "| agent cost | ${c:.4} |");
        }
        if let Some(c) = self.cost_per_success_usd {
            let _ = writeln!(md, "| agent cost per success | ${c:.4} |");
        }
        let _ = writeln!(md, "| user tokens | {} |", self.user_tokens);
        let ended: Vec<String> = self.ended.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(md, "| episodes ended | {} |", ended.join(", "));
        let _ = writeln!(
            md,
            "\n| task | rewards | db | outputs | ended | run |\n|---|---|---|---|---|---|"
        );
        for e in &self.episodes {
            let outputs: Vec<String> = e
                .outputs
                .iter()
                .map(|(o, ok)| format!("{}{o}", if *ok { "✓" } else { "✗" }))
                .collect();
            let _ = writeln!(
                md,
                "| {} #{} | {} | {} | {} | {}{} | `{}` |",
                e.task_index,
                e.trial,
                e.reward,
                if e.db_match { "✓" } else { "✗" },
                outputs.join(" "),
                e.ended,
                e.reason
                    .as_deref()
                    .map(|r| format!(": {}", r.replace('|', "/")))
                    .unwrap_or_default(),
                e.run_id
            );
        }
        md
    }
}

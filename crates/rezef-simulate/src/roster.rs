//! The agents: who serves which queue in which language. Agent `i` has the skill of queue
//! `i mod q`, every second agent a second skill, and every agent speaks the first language
//! and one other, spread so that with at least `q × (languages − 1)` agents every queue is
//! served in every language.

use crate::Config;

/// One agent of the roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    pub id: String,
    /// The queues (skills) the agent serves.
    pub skills: Vec<String>,
    pub languages: Vec<String>,
    /// Contacts at once on written and messaging channels; a call takes all of it.
    pub capacity: u32,
}

impl Agent {
    pub fn serves(&self, queue: &str) -> bool {
        self.skills.iter().any(|skill| skill == queue)
    }

    pub fn speaks(&self, language: &str) -> bool {
        self.languages.iter().any(|spoken| spoken == language)
    }
}

/// The roster of `config.agents` agents (see the module docs).
pub fn roster(config: &Config) -> Vec<Agent> {
    let queues = config.queues();
    let languages: Vec<&str> = config.languages.iter().map(|(l, _)| l.as_str()).collect();
    (0..config.agents as usize)
        .map(|i| {
            let mut skills = vec![queues[i % queues.len()].to_owned()];
            if i % 2 == 1 && queues.len() > 1 {
                skills.push(queues[(i + 1) % queues.len()].to_owned());
            }
            let mut spoken = vec![languages[0].to_owned()];
            if languages.len() > 1 {
                let other = 1 + (i / queues.len()) % (languages.len() - 1);
                spoken.push(languages[other].to_owned());
            }
            Agent {
                id: format!("agent-{:04}", i + 1),
                skills,
                languages: spoken,
                capacity: config.agent_capacity,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    #[test]
    fn given_enough_agents_every_queue_is_served_in_every_language() {
        let config = Config::new("acme", SystemTime::UNIX_EPOCH, 10, 8);
        let agents = roster(&config);
        assert_eq!(agents.len(), 8);
        for queue in config.queues() {
            for (language, _) in &config.languages {
                assert!(
                    agents.iter().any(|a| a.serves(queue) && a.speaks(language)),
                    "{queue} in {language}"
                );
            }
        }
        assert_eq!(agents[1].skills, ["orders", "support"]);
        assert_eq!(agents[0].languages, ["he", "en"]);
    }
}

//! A set of agents as a bitset over their dense indexes: who qualifies for a pool, who is
//! free on a channel, who speaks a language. A contact's candidates are the intersection
//! of a few such sets, taken 64 agents at a time, instead of a walk over every agent with
//! its expressions evaluated again.

/// Agents by index (the engine numbers agents in the order it first sees them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentSet {
    words: Vec<u64>,
}

impl AgentSet {
    pub fn set(&mut self, agent: usize, member: bool) {
        let (word, bit) = (agent / 64, 1u64 << (agent % 64));
        if member {
            if word >= self.words.len() {
                self.words.resize(word + 1, 0);
            }
            self.words[word] |= bit;
        } else if let Some(word) = self.words.get_mut(word) {
            *word &= !bit;
        }
    }

    pub fn insert(&mut self, agent: usize) {
        self.set(agent, true);
    }

    pub fn contains(&self, agent: usize) -> bool {
        self.words
            .get(agent / 64)
            .is_some_and(|word| word & (1u64 << (agent % 64)) != 0)
    }

    /// How many agents are in both sets.
    pub fn count_common(&self, other: &Self) -> usize {
        self.words
            .iter()
            .zip(&other.words)
            .map(|(a, b)| (a & b).count_ones() as usize)
            .sum()
    }

    /// The agents in the set, in index order, found as they are asked for.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(at, word)| {
            let mut word = *word;
            std::iter::from_fn(move || {
                (word != 0).then(|| {
                    let agent = at * 64 + word.trailing_zeros() as usize;
                    word &= word - 1;
                    agent
                })
            })
        })
    }

    /// How many agents are in the set.
    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// The agents in every one of `sets`, in index order (none when `sets` is empty).
    pub fn common(sets: &[&Self]) -> Vec<usize> {
        let words = sets.iter().map(|s| s.words.len()).min().unwrap_or(0);
        let mut members = Vec::new();
        for at in 0..words {
            let mut word = sets.iter().fold(u64::MAX, |acc, s| acc & s.words[at]);
            while word != 0 {
                members.push(at * 64 + word.trailing_zeros() as usize);
                word &= word - 1;
            }
        }
        members
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(members: &[usize]) -> AgentSet {
        let mut set = AgentSet::default();
        members.iter().for_each(|m| set.insert(*m));
        set
    }

    #[test]
    fn members_come_and_go() {
        let mut agents = set(&[0, 63, 64, 200]);
        assert!(agents.contains(63) && agents.contains(200) && !agents.contains(1));
        agents.set(63, false);
        agents.set(5_000, false);
        assert!(!agents.contains(63) && !agents.contains(5_000));
        assert_eq!(AgentSet::common(&[&agents]), [0, 64, 200]);
    }

    #[test]
    fn a_set_counts_and_lists_its_members_in_order() {
        let mut agents = set(&[1, 2, 64, 130, 131]);
        assert_eq!((agents.len(), AgentSet::default().len()), (5, 0));
        agents.set(64, false);
        assert_eq!(agents.len(), 4);
        assert_eq!(agents.iter().collect::<Vec<_>>(), [1, 2, 130, 131]);
        assert_eq!(AgentSet::default().iter().count(), 0);
    }

    #[test]
    fn intersections_are_exact_across_words_of_any_length() {
        let a = set(&[1, 2, 64, 130, 700]);
        let b = set(&[2, 64, 129, 130]);
        let c = set(&[0, 2, 64, 130, 131]);
        assert_eq!(AgentSet::common(&[&a, &b, &c]), [2, 64, 130]);
        assert_eq!(a.count_common(&b), 3);
        assert_eq!(
            AgentSet::common(&[&a, &AgentSet::default()]),
            Vec::<usize>::new()
        );
        assert!(AgentSet::common(&[]).is_empty());
    }
}

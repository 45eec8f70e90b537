//! Which queued jobs start next: pure bookkeeping, no I/O, so it is tested on its own.
//!
//! A queued job is *waiting* while any job it comes after has not succeeded, and *ready*
//! once all have. Ready jobs start in order of priority (higher first), then id (FIFO), each
//! as soon as every resource it needs is free; a job that does not fit does not hold back a
//! later one that does (a download waits for a network slot while tiling uses the CPUs).

use super::job::{JobId, JobState, Resources};
use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};

/// Order within the ready queue: priority (higher first), then id (older first).
type Place = (Reverse<i32>, JobId);

#[derive(Debug)]
pub struct Scheduler {
    total: Resources,
    in_use: Resources,
    /// Ready jobs grouped by what they need: a pass looks at the head of each group, so
    /// starting a job costs the same with ten or ten thousand queued.
    ready: HashMap<Resources, BTreeSet<Place>>,
    /// Waiting jobs: their place, needs, and what they still wait for.
    waiting: HashMap<JobId, (Place, Resources, Vec<JobId>)>,
}

/// What became of waiting jobs after a dependency changed.
#[derive(Debug, Default, PartialEq)]
pub struct Unblocked {
    /// Jobs whose dependencies all succeeded: now ready.
    pub ready: Vec<JobId>,
    /// Jobs with a cancelled dependency: they can never run, and are cancelled too.
    pub doomed: Vec<(JobId, JobId)>,
}

impl Scheduler {
    pub fn new(total: Resources) -> Self {
        Scheduler {
            total,
            in_use: Resources::default(),
            ready: HashMap::new(),
            waiting: HashMap::new(),
        }
    }

    pub fn total(&self) -> Resources {
        self.total
    }

    pub fn in_use(&self) -> Resources {
        self.in_use
    }

    /// Whether a job needing `needs` could ever start here.
    pub fn can_ever_run(&self, needs: Resources) -> bool {
        needs.fits_in(self.total)
    }

    /// Queues a job needing `needs`; `state_of` tells the state of the jobs it comes after.
    pub fn enqueue(
        &mut self,
        id: JobId,
        priority: i32,
        needs: Resources,
        after: &[JobId],
        state_of: impl Fn(JobId) -> Option<JobState>,
    ) {
        let pending: Vec<JobId> = after
            .iter()
            .copied()
            .filter(|dep| state_of(*dep) != Some(JobState::Succeeded))
            .collect();
        let place = (Reverse(priority), id);
        if pending.is_empty() {
            self.ready.entry(needs).or_default().insert(place);
        } else {
            self.waiting.insert(id, (place, needs, pending));
        }
    }

    /// Forgets a queued job (cancelled). Returns whether it was queued here.
    pub fn remove(&mut self, id: JobId) -> bool {
        let was_waiting = self.waiting.remove(&id).is_some();
        let was_ready = self.ready.values_mut().any(|group| {
            match group.iter().find(|(_, queued)| *queued == id).copied() {
                Some(place) => group.remove(&place),
                None => false,
            }
        });
        was_waiting || was_ready
    }

    /// Tells waiting jobs that `id` reached `state`.
    pub fn settled(&mut self, id: JobId, state: JobState) -> Unblocked {
        let mut out = Unblocked::default();
        let mut now_ready = Vec::new();
        for (job, (place, needs, pending)) in self.waiting.iter_mut() {
            if !pending.contains(&id) {
                continue;
            }
            match state {
                JobState::Succeeded => {
                    pending.retain(|dep| *dep != id);
                    if pending.is_empty() {
                        now_ready.push((*job, *place, *needs));
                    }
                }
                JobState::Cancelled => out.doomed.push((*job, id)),
                // A failed dependency may be retried: keep waiting for it.
                _ => {}
            }
        }
        for (job, place, needs) in now_ready {
            self.waiting.remove(&job);
            self.ready.entry(needs).or_default().insert(place);
            out.ready.push(job);
        }
        for (job, _) in &out.doomed {
            self.waiting.remove(job);
        }
        out.ready.sort_unstable();
        out.doomed.sort_unstable();
        out
    }

    /// Takes the ready jobs that can start now, in order, reserving what they need.
    pub fn start_next(&mut self) -> Vec<JobId> {
        let mut started = Vec::new();
        loop {
            let free = self.total.minus(self.in_use);
            let best = self
                .ready
                .iter()
                .filter(|(needs, _)| needs.fits_in(free))
                .filter_map(|(needs, group)| group.first().map(|place| (*place, *needs)))
                .min();
            let Some((place, needs)) = best else {
                return started;
            };
            if let Some(group) = self.ready.get_mut(&needs) {
                group.remove(&place);
            }
            self.in_use = self.in_use.plus(needs);
            started.push(place.1);
        }
    }

    /// Gives back what a finished job held.
    pub fn release(&mut self, needs: Resources) {
        self.in_use = self.in_use.minus(needs);
    }

    pub fn queued(&self) -> usize {
        self.ready.values().map(BTreeSet::len).sum::<usize>() + self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPU: Resources = Resources {
        cpu: 1,
        gpu: 0,
        net: 0,
    };
    const NET: Resources = Resources {
        cpu: 0,
        gpu: 0,
        net: 1,
    };

    fn two_cpus_one_net() -> Scheduler {
        Scheduler::new(Resources {
            cpu: 2,
            gpu: 0,
            net: 1,
        })
    }

    #[test]
    fn higher_priority_first_then_first_come_first_served() {
        let mut s = two_cpus_one_net();
        for (id, priority) in [(1, 0), (2, 0), (3, 5), (4, 0)] {
            s.enqueue(id, priority, CPU, &[], |_| None);
        }
        assert_eq!(s.start_next(), vec![3, 1]);
        assert_eq!(s.start_next(), Vec::<JobId>::new(), "both CPUs busy");
        s.release(CPU);
        assert_eq!(s.start_next(), vec![2]);
        s.release(CPU);
        s.release(CPU);
        assert_eq!(s.start_next(), vec![4]);
        assert_eq!(s.queued(), 0);
    }

    #[test]
    fn a_job_that_does_not_fit_does_not_hold_back_one_that_does() {
        let mut s = two_cpus_one_net();
        s.enqueue(1, 0, NET, &[], |_| None);
        s.enqueue(2, 0, NET, &[], |_| None);
        s.enqueue(3, 0, CPU, &[], |_| None);
        assert_eq!(s.start_next(), vec![1, 3]);
        assert_eq!(s.in_use(), CPU.plus(NET));
        s.release(NET);
        assert_eq!(s.start_next(), vec![2]);
    }

    #[test]
    fn dependents_wait_for_success_and_die_with_a_cancelled_dependency() {
        let mut s = two_cpus_one_net();
        s.enqueue(1, 0, CPU, &[], |_| None);
        s.enqueue(2, 9, CPU, &[1], |_| Some(JobState::Queued));
        s.enqueue(3, 0, CPU, &[1], |_| Some(JobState::Queued));
        s.enqueue(4, 0, CPU, &[2], |_| Some(JobState::Queued));
        assert_eq!(s.start_next(), vec![1], "2 and 3 wait for 1");
        s.release(CPU);
        assert_eq!(s.settled(1, JobState::Failed), Unblocked::default());
        let unblocked = s.settled(1, JobState::Succeeded);
        assert_eq!(unblocked.ready, vec![2, 3]);
        assert_eq!(s.start_next(), vec![2, 3]);
        let unblocked = s.settled(2, JobState::Cancelled);
        assert_eq!(unblocked.doomed, vec![(4, 2)]);
        assert_eq!(s.queued(), 0);
    }

    #[test]
    fn a_dependency_that_already_succeeded_does_not_block() {
        let mut s = two_cpus_one_net();
        s.enqueue(5, 0, CPU, &[1, 2], |id| {
            Some(if id == 1 {
                JobState::Succeeded
            } else {
                JobState::Running
            })
        });
        assert!(s.start_next().is_empty());
        assert_eq!(s.settled(2, JobState::Succeeded).ready, vec![5]);
    }

    #[test]
    fn removing_a_queued_job_forgets_it() {
        let mut s = two_cpus_one_net();
        s.enqueue(1, 0, CPU, &[], |_| None);
        s.enqueue(2, 0, CPU, &[1], |_| Some(JobState::Queued));
        assert!(s.remove(1));
        assert!(s.remove(2));
        assert!(!s.remove(3));
        assert!(s.start_next().is_empty());
    }

    #[test]
    fn jobs_needing_more_than_exists_are_recognised() {
        let s = two_cpus_one_net();
        assert!(!s.can_ever_run(Resources {
            cpu: 0,
            gpu: 1,
            net: 0
        }));
        assert!(s.can_ever_run(CPU));
    }
}

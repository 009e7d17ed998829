//! [`Schedules`] in memory: every schedule with how far it has fired, in
//! a map sorted by name (the order `list_schedules` wants), behind a mutex
//! of its own, apart from the [`Store`](crate::Store) and
//! [`Events`](crate::Events) state, so that none waits for another.
//!
//! Every call runs under the mutex from start to end, so the
//! compare-and-set of [`advance_schedule`](Schedules::advance_schedule) is
//! atomic against every other call.

use std::collections::BTreeMap;
use std::sync::MutexGuard;

use super::MemoryStore;
use crate::{Result, ScheduleInfo, ScheduleRecord, Schedules, StoreError};

/// Everything [`Schedules`] stores: each schedule by name.
pub(super) type SchedulesState = BTreeMap<String, ScheduleInfo>;

impl MemoryStore {
    fn schedules_state(&self) -> MutexGuard<'_, SchedulesState> {
        // Every change below is one assignment made after its checks, so
        // the data behind a poisoned lock is still consistent.
        self.schedules.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Schedules for MemoryStore {
    fn create_schedule(&self, schedule: &ScheduleRecord) -> Result<()> {
        let mut state = self.schedules_state();
        if state.contains_key(&schedule.name) {
            return Err(StoreError::AlreadyExists(schedule.name.clone()));
        }
        let info = ScheduleInfo { schedule: schedule.clone(), last_fired: None, last_invocation: None, fired: 0 };
        state.insert(schedule.name.clone(), info);
        Ok(())
    }

    fn get_schedule(&self, name: &str) -> Result<Option<ScheduleInfo>> {
        Ok(self.schedules_state().get(name).cloned())
    }

    fn list_schedules(&self) -> Result<Vec<ScheduleInfo>> {
        Ok(self.schedules_state().values().cloned().collect())
    }

    fn delete_schedule(&self, name: &str) -> Result<bool> {
        Ok(self.schedules_state().remove(name).is_some())
    }

    fn advance_schedule(&self, name: &str, from: Option<i64>, to: i64, invocation: Option<&str>) -> Result<bool> {
        let mut state = self.schedules_state();
        let Some(info) = state.get_mut(name).filter(|info| info.last_fired == from) else { return Ok(false) };
        info.last_fired = Some(to);
        if let Some(invocation) = invocation {
            info.last_invocation = Some(invocation.to_owned());
            info.fired = info.fired.wrapping_add(1);
        }
        Ok(true)
    }
}

//! A2A tasks as the payee keeps them for `GetTask` / `tasks/get` (spec `aep2.md#a2a-tasks`): a
//! version-neutral record written in the spelling of whoever asks, and a bounded in-memory store.

use crate::{A2aVersion, TaskStatus};
use aep2::json::{self, Object, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// One task: its ids, its current status and, for a paid task, what paid it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Task {
    /// `id`.
    pub id: String,
    /// `contextId`.
    pub context_id: String,
    /// `status` (the agent's message carries the AEP2 metadata).
    pub status: TaskStatus,
    /// The mandate id and the request hash it was taken for, when a mandate paid this task.
    pub paid: Option<([u8; 32], [u8; 32])>,
}

impl Task {
    /// The A2A `Task` object spelt for `version`: v1.0 `{id, contextId, status}`, v0.3 the same
    /// with `kind: "task"` first and v0.3 spellings inside.
    pub fn to_json_for(&self, version: A2aVersion) -> Value {
        let mut o = Object::new();
        if version == A2aVersion::V0_3 {
            o.insert("kind", Value::String("task".into()));
        }
        o.insert("id", Value::String(self.id.clone()));
        o.insert("contextId", Value::String(self.context_id.clone()));
        o.insert("status", self.status.to_json_for(version));
        Value::Object(o)
    }

    /// What the task counts against the store's byte bound: its v1.0 JSON text plus the record.
    fn weight(&self) -> usize {
        json::to_compact(&self.to_json_for(A2aVersion::V1_0)).len() + 128
    }
}

struct Slot {
    task: Task,
    seq: u64,
    bytes: usize,
}

#[derive(Default)]
struct Inner {
    tasks: HashMap<String, Slot>,
    /// Unpaid tasks by last update, oldest first: evicted before any paid one.
    unpaid: BTreeMap<u64, String>,
    /// Paid tasks by last update, oldest first.
    paid: BTreeMap<u64, String>,
    by_mandate: HashMap<[u8; 32], String>,
    bytes: usize,
    seq: u64,
}

impl Inner {
    fn remove(&mut self, id: &str) -> Option<Slot> {
        let slot = self.tasks.remove(id)?;
        self.unpaid.remove(&slot.seq);
        self.paid.remove(&slot.seq);
        if let Some((mandate, _)) = slot.task.paid
            && self.by_mandate.get(&mandate).is_some_and(|t| t == id)
        {
            self.by_mandate.remove(&mandate);
        }
        self.bytes -= slot.bytes;
        Some(slot)
    }
}

/// A bounded, in-process task store shared by the handlers of one payee.
///
/// Bounds: at most `max_tasks` tasks and `max_bytes` bytes of task JSON. When a new or updated
/// task does not fit, the least recently updated *unpaid* task goes first, and a paid task only
/// when no unpaid one is left, so a flood of unpaid requests cannot push out the results payers
/// paid for. A task larger than `max_bytes` alone is not kept. The store is not durable: after a
/// restart `GetTask` answers task-not-found for earlier tasks, and the payment store alone decides
/// what a retried paid message gets (spec `aep2.md#a2a-tasks`).
pub struct TaskStore {
    inner: Mutex<Inner>,
    max_tasks: usize,
    max_bytes: usize,
}

impl std::fmt::Debug for TaskStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskStore")
            .field("len", &self.len())
            .field("max_tasks", &self.max_tasks)
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

impl TaskStore {
    /// A store of at most `max_tasks` tasks (at least 1) and `max_bytes` bytes.
    pub fn new(max_tasks: usize, max_bytes: usize) -> TaskStore {
        TaskStore {
            inner: Mutex::new(Inner::default()),
            max_tasks: max_tasks.max(1),
            max_bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere leaves consistent maps behind (every update is completed in place).
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores `task` (replacing a task of the same id), evicting as the type describes. Returns
    /// false if the task alone is over the byte bound and was not kept.
    pub fn put(&self, task: Task) -> bool {
        let bytes = task.weight();
        let mut g = self.lock();
        let previous = g.remove(&task.id);
        if bytes > self.max_bytes {
            // A paid task that cannot be kept must not lose its earlier record silently either.
            if let Some(slot) = previous {
                let id = slot.task.id.clone();
                g.bytes += slot.bytes;
                g.tasks.insert(id, slot);
            }
            return false;
        }
        while !g.tasks.is_empty() && (g.tasks.len() >= self.max_tasks || g.bytes + bytes > self.max_bytes) {
            let oldest = g
                .unpaid
                .first_key_value()
                .or_else(|| g.paid.first_key_value())
                .map(|(_, id)| id.clone());
            match oldest {
                Some(id) => {
                    g.remove(&id);
                }
                None => break,
            }
        }
        g.seq += 1;
        let seq = g.seq;
        let id = task.id.clone();
        if let Some((mandate, _)) = task.paid {
            g.by_mandate.insert(mandate, id.clone());
            g.paid.insert(seq, id.clone());
        } else {
            g.unpaid.insert(seq, id.clone());
        }
        g.bytes += bytes;
        g.tasks.insert(id, Slot { task, seq, bytes });
        true
    }

    /// The task with this id.
    pub fn get(&self, id: &str) -> Option<Task> {
        self.lock().tasks.get(id).map(|s| s.task.clone())
    }

    /// The task a mandate paid, if the store still holds it.
    pub fn paid_by(&self, mandate_id: &[u8; 32]) -> Option<Task> {
        let g = self.lock();
        let id = g.by_mandate.get(mandate_id)?;
        g.tasks.get(id).map(|s| s.task.clone())
    }

    /// How many tasks are held.
    pub fn len(&self) -> usize {
        self.lock().tasks.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of task JSON held.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Message, Part, Role, TaskState};

    fn task(id: &str, paid: Option<u8>) -> Task {
        Task {
            id: id.into(),
            context_id: format!("ctx-{id}"),
            status: TaskStatus {
                state: TaskState::InputRequired,
                message: Message::new(Role::Agent, format!("m-{id}"), vec![Part::text("pay")]),
            },
            paid: paid.map(|b| ([b; 32], [b; 32])),
        }
    }

    #[test]
    fn count_bound_evicts_unpaid_before_paid() {
        let store = TaskStore::new(3, 1 << 20);
        assert!(store.put(task("p1", Some(1))));
        assert!(store.put(task("u1", None)));
        assert!(store.put(task("u2", None)));
        assert!(store.put(task("u3", None)));
        assert_eq!(store.len(), 3);
        assert!(store.get("u1").is_none(), "the oldest unpaid task goes first");
        assert!(store.get("p1").is_some());
        assert_eq!(store.paid_by(&[1; 32]).unwrap().id, "p1");
        assert!(store.put(task("p2", Some(2))));
        assert!(store.put(task("p3", Some(3))));
        assert!(store.put(task("p4", Some(4))));
        assert_eq!(store.len(), 3);
        assert!(store.get("p1").is_none() && store.paid_by(&[1; 32]).is_none());
        assert!(store.get("p4").is_some());
    }

    #[test]
    fn byte_bound_holds_and_oversized_tasks_are_refused() {
        let one = task("a", None).weight();
        let store = TaskStore::new(100, one * 2 + 10);
        for i in 0..10 {
            assert!(store.put(task(&format!("{i}"), None)));
            assert!(store.bytes() <= one * 2 + 10);
        }
        assert_eq!(store.len(), 2);
        let tiny = TaskStore::new(100, 10);
        assert!(!tiny.put(task("a", None)));
        assert!(tiny.is_empty());
    }

    #[test]
    fn an_update_replaces_and_renders_per_version() {
        let store = TaskStore::new(10, 1 << 20);
        store.put(task("a", None));
        let mut t = task("a", Some(7));
        t.status.state = TaskState::Completed;
        store.put(t);
        assert_eq!(store.len(), 1);
        let t = store.get("a").unwrap();
        let v1 = json::to_compact(&t.to_json_for(A2aVersion::V1_0));
        let v03 = json::to_compact(&t.to_json_for(A2aVersion::V0_3));
        assert!(v1.contains("TASK_STATE_COMPLETED") && v1.contains("ROLE_AGENT") && !v1.contains("\"kind\""));
        assert!(v03.starts_with(r#"{"kind":"task""#) && v03.contains(r#""state":"completed""#));
        assert!(v03.contains(r#""role":"agent""#) && v03.contains(r#"{"kind":"text","text":"pay"}"#));
        assert!(!v03.contains("TASK_STATE") && !v03.contains("ROLE_"));
    }
}

//! The store layer on both backends: the same transactions give the same results, and locked
//! writes from many threads and two pools (two "processes") are serialised.

use aep2_replay::db::{Backend, Db, DbOptions, Kind, Location, testing};
use aep2_replay::params;
use aep2_replay::sqlite_file::FileKind;
use std::sync::Arc;

const KIND: Kind = Kind {
    sqlite: FileKind {
        name: "test store",
        application_id: 0x7465_7374,
        schema_version: 2,
        schema: "CREATE TABLE counters (name TEXT NOT NULL PRIMARY KEY, n INTEGER NOT NULL, b BLOB) STRICT;
                 CREATE TABLE log (id INTEGER NOT NULL PRIMARY KEY, who TEXT NOT NULL) STRICT;",
        migrations: &[],
    },
    pg_namespace: "aep2_test",
    pg_schema: "CREATE TABLE counters (name TEXT NOT NULL PRIMARY KEY, n BIGINT NOT NULL, b BYTEA);
                CREATE TABLE log (id BIGINT NOT NULL PRIMARY KEY, who TEXT NOT NULL);",
    pg_migrations: &[],
};

fn locations(tag: &str) -> Vec<(Location, tempfile_dir::Dir)> {
    let dir = tempfile_dir::Dir::new(tag);
    let mut out = vec![(Location::Sqlite(dir.path().join("t.db")), dir)];
    if let Some(pg) = testing::postgres(tag) {
        out.push((pg, tempfile_dir::Dir::new("unused")));
    }
    out
}

mod tempfile_dir {
    use std::path::{Path, PathBuf};
    pub struct Dir(PathBuf);
    impl Dir {
        pub fn new(tag: &str) -> Dir {
            let p = std::env::temp_dir().join(format!(
                "aep2-db-test-{}-{tag}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).expect("temp dir");
            Dir(p)
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[test]
fn values_round_trip_on_both_backends() {
    for (loc, _dir) in locations("values") {
        let db = Db::open(&loc, &DbOptions::default(), &KIND).expect("open");
        db.write("insert", |tx| {
            tx.execute(
                "INSERT INTO counters (name, n, b) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO NOTHING",
                params!["a", 7i64, [1u8, 2, 3]],
            )?;
            tx.execute(
                "INSERT INTO counters (name, n, b) VALUES (?1, ?2, ?3)",
                params!["n", i64::MAX, None::<Vec<u8>>],
            )
        })
        .expect("write");
        let rows = db
            .read("select", |tx| {
                tx.query("SELECT name, n, b FROM counters ORDER BY name", params![])
            })
            .expect("read");
        assert_eq!(rows.len(), 2, "{loc:?}");
        assert_eq!(rows[0].text(0).expect("text"), "a");
        assert_eq!(rows[0].int(1).expect("int"), 7);
        assert_eq!(rows[0].array::<3>(2).expect("blob"), [1, 2, 3]);
        assert_eq!(rows[1].int(1).expect("int"), i64::MAX);
        assert_eq!(rows[1].opt_blob(2).expect("null"), None);
        // An error inside the closure rolls everything back.
        let err = db
            .write("fail", |tx| {
                tx.execute("UPDATE counters SET n = n + 1 WHERE name = 'a'", params![])?;
                Err::<(), _>(aep2::Error::new(aep2::Reason::InsufficientFunds, "no"))
            })
            .unwrap_err();
        assert_eq!(err.code(), "insufficient_funds");
        let n = db
            .read("n", |tx| {
                tx.query_one("SELECT n FROM counters WHERE name = ?1", params!["a"])?
                    .int(0)
            })
            .expect("n");
        assert_eq!(n, 7, "{loc:?}: the failed write was rolled back");
        // Reopening finds the schema (and does not re-create it).
        drop(db);
        let db = Db::open(&loc, &DbOptions::default(), &KIND).expect("reopen");
        let n = db
            .read("n", |tx| {
                tx.query_one("SELECT count(*) FROM counters", params![])?.int(0)
            })
            .expect("count");
        assert_eq!(n, 2);
    }
}

#[test]
fn locked_writes_from_two_pools_are_serialised() {
    for (loc, _dir) in locations("serial") {
        let a = Arc::new(Db::open(&loc, &DbOptions::default(), &KIND).expect("open a"));
        let b = Arc::new(Db::open(&loc, &DbOptions::default(), &KIND).expect("open b"));
        a.write("seed", |tx| {
            tx.execute("INSERT INTO counters (name, n) VALUES ('c', 0)", params![])
        })
        .expect("seed");
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let db = if t % 2 == 0 { Arc::clone(&a) } else { Arc::clone(&b) };
                std::thread::spawn(move || {
                    for _ in 0..40 {
                        // Read, then write what was read plus one: lost updates would show.
                        db.write("increment", |tx| {
                            let n = tx
                                .query_one("SELECT n FROM counters WHERE name = 'c'", params![])?
                                .int(0)?;
                            tx.execute("INSERT INTO log (id, who) VALUES (?1, ?2)", params![n, format!("{t}")])?;
                            tx.execute("UPDATE counters SET n = ?1 WHERE name = 'c'", params![n + 1])
                        })
                        .expect("increment");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let n = a
            .read("n", |tx| {
                tx.query_one("SELECT n FROM counters WHERE name = 'c'", params![])?
                    .int(0)
            })
            .expect("n");
        assert_eq!(n, 320, "{loc:?}");
        let logged = a
            .read("log", |tx| tx.query_one("SELECT count(*) FROM log", params![])?.int(0))
            .expect("log");
        assert_eq!(logged, 320);
        assert!(matches!(a.backend(), Backend::Sqlite | Backend::Postgres));
    }
}

#[test]
fn a_store_of_another_kind_is_refused() {
    let other = Kind {
        sqlite: FileKind {
            name: "other store",
            application_id: 0x6f74_6872,
            ..KIND.sqlite
        },
        ..KIND
    };
    for (loc, _dir) in locations("kind") {
        Db::open(&loc, &DbOptions::default(), &KIND).expect("open");
        let err = Db::open(&loc, &DbOptions::default(), &other).unwrap_err();
        assert_eq!(err.code(), "replay_store_unavailable", "{loc:?}");
    }
}

#[test]
fn sqlite_writers_share_commits_and_each_answer_follows_its_commit() {
    let dir = tempfile_dir::Dir::new("group");
    let loc = Location::Sqlite(dir.path().join("g.db"));
    let db = Arc::new(Db::open(&loc, &DbOptions::default(), &KIND).expect("open"));
    db.write("seed", |tx| {
        tx.execute("INSERT INTO counters (name, n) VALUES ('c', 0)", params![])
    })
    .expect("seed");
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let db = Arc::clone(&db);
            std::thread::spawn(move || {
                for i in 0..100 {
                    let refuse = i % 10 == 0;
                    let r = db.write("increment", |tx| {
                        let n = tx
                            .query_one("SELECT n FROM counters WHERE name = 'c'", params![])?
                            .int(0)?;
                        tx.execute("INSERT INTO log (id, who) VALUES (?1, ?2)", params![n, format!("{t}")])?;
                        tx.execute("UPDATE counters SET n = ?1 WHERE name = 'c'", params![n + 1])?;
                        if refuse {
                            return Err(aep2::Error::new(aep2::Reason::InsufficientFunds, "refused"));
                        }
                        Ok(n)
                    });
                    match r {
                        // Once answered, the write is committed: a fresh connection sees it.
                        Ok(n) => {
                            let seen = db
                                .read("check", |tx| {
                                    tx.query_opt("SELECT who FROM log WHERE id = ?1", params![n])
                                })
                                .expect("read");
                            assert!(seen.is_some(), "answered before its commit");
                        }
                        Err(e) => assert_eq!(e.code(), "insufficient_funds"),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    let n = db
        .read("n", |tx| {
            tx.query_one("SELECT n FROM counters WHERE name = 'c'", params![])?
                .int(0)
        })
        .expect("n");
    assert_eq!(n, 720, "each refused call's savepoint was rolled back, nothing else");
    let (commits, calls) = db.group_stats().expect("sqlite");
    assert_eq!(calls, 801);
    assert!(commits <= calls);
    eprintln!("{calls} calls in {commits} commits");
}

/// A panicking closure (a bug) rolls its transaction back: on SQLite its whole group, on
/// Postgres before the connection returns to the pool (where the next `BEGIN` would run inside
/// the open transaction and commit the panicked call's writes).
#[test]
fn a_panicking_call_fails_its_group_and_the_store_goes_on() {
    for (loc, _dir) in locations("panic") {
        let db = Arc::new(Db::open(&loc, &DbOptions::default(), &KIND).expect("open"));
        let d = Arc::clone(&db);
        let panicked = std::thread::spawn(move || {
            let _ = d.write("boom", |tx| -> Result<(), aep2::Error> {
                tx.execute("INSERT INTO counters (name, n) VALUES ('x', 1)", params![])?;
                panic!("a bug in a closure");
            });
        })
        .join();
        assert!(panicked.is_err());
        // More writes than the pool has connections: each would reuse the panicked one's.
        for i in 0..12i64 {
            db.write("after", |tx| {
                tx.execute("INSERT INTO log (id, who) VALUES (?1, 'after')", params![i])
            })
            .expect("the store still works");
        }
        let names = db
            .read("names", |tx| tx.query("SELECT name FROM counters", params![]))
            .expect("read");
        assert_eq!(names.len(), 0, "{loc:?}: the panicking call's insert was rolled back");
    }
}

/// A store is called from async code too (the SP's settlement worker calls the ledger inside its
/// task): many calls in one poll of a Tokio task, whose cooperative budget they would exhaust,
/// must all complete.
#[test]
fn many_calls_in_one_poll_of_a_tokio_task_complete() {
    for (loc, _dir) in locations("async") {
        let db = Db::open(&loc, &DbOptions::default(), &KIND).expect("open");
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                for i in 0..600i64 {
                    db.write("insert", |tx| {
                        tx.execute("INSERT INTO log (id, who) VALUES (?1, 'async')", params![i])
                    })
                    .expect("write");
                    db.read("count", |tx| {
                        tx.query_one("SELECT count(*) FROM log", params![])?.int(0)
                    })
                    .expect("read");
                }
            });
            let _ = done.send(());
        });
        finished
            .recv_timeout(std::time::Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("{loc:?}: the calls did not complete"));
    }
}

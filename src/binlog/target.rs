//! The replay's statements on the target, in its flavor's words: MariaDB's named
//! connection (`CHANGE MASTER 'name' ...`, `SET GLOBAL name.replicate_...`) or MySQL's
//! channel (8.0.23 and later: `CHANGE REPLICATION SOURCE TO ... FOR CHANNEL`,
//! `CHANGE REPLICATION FILTER ... FOR CHANNEL`, `SHOW REPLICA STATUS`). The MySQL forms
//! are written from the MySQL 8.0/8.4 manuals and checked by unit tests only.

use crate::connect::{Flavor, ServerInfo};
use crate::error::{Error, Result};

use super::replay::ReplayFilter;

/// The replication connection (MariaDB) or channel (MySQL) a replay adds.
pub(crate) const CONNECTION: &str = "mysnap_replay";

/// How to drive the target's replication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    MariaDb,
    MySql,
}

/// Where the applier stands, from a status row.
pub(crate) struct Applied {
    pub file: String,
    pub pos: u64,
    pub sql_error: String,
    pub io_error: String,
    pub io_running: bool,
}

impl Dialect {
    /// The target's dialect; a MySQL older than 8.0.23 (no `CHANGE REPLICATION SOURCE`)
    /// is refused.
    pub(crate) fn of(server: &ServerInfo) -> Result<Dialect> {
        match server.flavor {
            Flavor::Mariadb => Ok(Dialect::MariaDb),
            Flavor::Mysql if server.at_least(8, 0, 23) => Ok(Dialect::MySql),
            Flavor::Mysql => Err(Error::Invalid(format!(
                "a point-in-time replay into MySQL {} needs MySQL 8.0.23 or later (CHANGE REPLICATION SOURCE)",
                server.version
            ))),
        }
    }

    /// Statements run first on the session that drives the replay.
    pub(crate) fn session_setup(self) -> Vec<String> {
        match self {
            Dialect::MariaDb => vec![],
            // Quoted filter patterns hold backslashes: read them as escapes.
            Dialect::MySql => vec!["SET SESSION sql_mode = ''".into()],
        }
    }

    pub(crate) fn status(self) -> String {
        match self {
            Dialect::MariaDb => format!("SHOW SLAVE '{CONNECTION}' STATUS"),
            Dialect::MySql => format!("SHOW REPLICA STATUS FOR CHANNEL '{CONNECTION}'"),
        }
    }

    /// Every replication connection of the target (to tell whether others run).
    pub(crate) fn all_status(self) -> &'static str {
        match self {
            Dialect::MariaDb => "SHOW ALL SLAVES STATUS",
            Dialect::MySql => "SHOW REPLICA STATUS",
        }
    }

    pub(crate) fn stop(self) -> String {
        match self {
            Dialect::MariaDb => format!("STOP SLAVE '{CONNECTION}'"),
            Dialect::MySql => format!("STOP REPLICA FOR CHANNEL '{CONNECTION}'"),
        }
    }

    pub(crate) fn start(self) -> String {
        match self {
            Dialect::MariaDb => format!("START SLAVE '{CONNECTION}'"),
            Dialect::MySql => format!("START REPLICA FOR CHANNEL '{CONNECTION}'"),
        }
    }

    pub(crate) fn reset(self) -> String {
        match self {
            Dialect::MariaDb => format!("RESET SLAVE '{CONNECTION}' ALL"),
            Dialect::MySql => format!("RESET REPLICA ALL FOR CHANNEL '{CONNECTION}'"),
        }
    }

    /// The global that sets the parallel applier's threads (changed only while every
    /// replica thread is stopped).
    pub(crate) fn parallel_variable(self) -> &'static str {
        match self {
            Dialect::MariaDb => "slave_parallel_threads",
            Dialect::MySql => "replica_parallel_workers",
        }
    }

    /// Points the connection at the served primary, from `file:pos`.
    pub(crate) fn change_source(
        self,
        host: &str,
        port: u16,
        password: &str,
        file: &str,
        pos: u64,
    ) -> String {
        let file = file.replace(['\'', '\\'], "");
        match self {
            Dialect::MariaDb => format!(
                "CHANGE MASTER '{CONNECTION}' TO MASTER_HOST='{host}', MASTER_PORT={port}, MASTER_USER='mysnap', MASTER_PASSWORD='{password}', MASTER_LOG_FILE='{file}', MASTER_LOG_POS={pos}, MASTER_USE_GTID=no, MASTER_SSL=0, MASTER_HEARTBEAT_PERIOD=1, MASTER_CONNECT_RETRY=1"
            ),
            Dialect::MySql => format!(
                "CHANGE REPLICATION SOURCE TO SOURCE_HOST='{host}', SOURCE_PORT={port}, SOURCE_USER='mysnap', SOURCE_PASSWORD='{password}', SOURCE_LOG_FILE='{file}', SOURCE_LOG_POS={pos}, SOURCE_AUTO_POSITION=0, SOURCE_SSL=0, SOURCE_HEARTBEAT_PERIOD=1, SOURCE_CONNECT_RETRY=1 FOR CHANNEL '{CONNECTION}'"
            ),
        }
    }

    /// The selection as the connection's filters.
    pub(crate) fn filters(self, f: &ReplayFilter) -> Result<Vec<String>> {
        let check = |name: &str| {
            if name.contains([',', '\\', '.', '\'', '`', '(', ')']) || name.contains("->") {
                Err(Error::Invalid(format!(
                    "{name:?}: a name holding a comma, dot, quote, backslash, parenthesis or '->' cannot be given to the target's replication filters; restore without --until"
                )))
            } else {
                Ok(())
            }
        };
        for db in &f.databases {
            check(db)?;
        }
        for (db, t) in &f.ignore_tables {
            check(db)?;
            check(t)?;
        }
        for (a, b) in &f.rewrites {
            check(a)?;
            check(b)?;
        }
        // In a wildcard rule, % and _ are patterns: a name's own are escaped.
        let like = |name: &str| format!("{}.%", name.replace('%', "\\%").replace('_', "\\_"));
        match self {
            Dialect::MariaDb => {
                let set = |var: &str, items: Vec<String>| {
                    format!(
                        "SET GLOBAL {CONNECTION}.{var} = {}",
                        crate::sql::string(&items.join(","))
                    )
                };
                Ok(vec![
                    set(
                        "replicate_rewrite_db",
                        f.rewrites
                            .iter()
                            .map(|(a, b)| format!("{a}->{b}"))
                            .collect(),
                    ),
                    set(
                        "replicate_wild_do_table",
                        f.databases.iter().map(|d| like(d)).collect(),
                    ),
                    set(
                        "replicate_ignore_table",
                        f.ignore_tables
                            .iter()
                            .map(|(d, t)| format!("{d}.{t}"))
                            .collect(),
                    ),
                ])
            }
            Dialect::MySql => {
                // Quoted with the session's sql_mode cleared, so a backslash escapes.
                let quoted = |s: String| format!("'{}'", s.replace('\\', "\\\\"));
                let wild: Vec<String> = f.databases.iter().map(|d| quoted(like(d))).collect();
                let ignore: Vec<String> = f
                    .ignore_tables
                    .iter()
                    .map(|(d, t)| format!("`{d}`.`{t}`"))
                    .collect();
                let rewrite: Vec<String> = f
                    .rewrites
                    .iter()
                    .map(|(a, b)| format!("(`{a}`,`{b}`)"))
                    .collect();
                Ok(vec![format!(
                    "CHANGE REPLICATION FILTER REPLICATE_REWRITE_DB = ({}), REPLICATE_WILD_DO_TABLE = ({}), REPLICATE_IGNORE_TABLE = ({}) FOR CHANNEL '{CONNECTION}'",
                    rewrite.join(", "),
                    wild.join(", "),
                    ignore.join(", ")
                )])
            }
        }
    }

    /// Reads a status row, given its columns' names and values.
    pub(crate) fn applied(self, get: &dyn Fn(&str) -> Option<String>) -> Option<Applied> {
        let (file, pos, io) = match self {
            Dialect::MariaDb => (
                "Relay_Master_Log_File",
                "Exec_Master_Log_Pos",
                "Slave_IO_Running",
            ),
            Dialect::MySql => (
                "Relay_Source_Log_File",
                "Exec_Source_Log_Pos",
                "Replica_IO_Running",
            ),
        };
        Some(Applied {
            file: get(file)?,
            pos: get(pos)?.parse().ok()?,
            sql_error: get("Last_SQL_Error").unwrap_or_default(),
            io_error: get("Last_IO_Error").unwrap_or_default(),
            io_running: get(io).as_deref() != Some("No"),
        })
    }

    /// What the target's account needs.
    pub(crate) fn privileges(self) -> &'static str {
        match self {
            Dialect::MariaDb => "REPLICATION SLAVE ADMIN or SUPER",
            Dialect::MySql => "REPLICATION_SLAVE_ADMIN",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter() -> ReplayFilter {
        ReplayFilter {
            databases: vec!["shop_2".into(), "crm".into()],
            ignore_tables: vec![("shop_2".into(), "log".into())],
            rewrites: vec![("shop".into(), "shop_2".into())],
        }
    }

    #[test]
    fn mariadb_statements_name_the_connection() {
        let d = Dialect::MariaDb;
        assert_eq!(d.status(), "SHOW SLAVE 'mysnap_replay' STATUS");
        assert_eq!(d.reset(), "RESET SLAVE 'mysnap_replay' ALL");
        let f = d.filters(&filter()).unwrap();
        assert_eq!(f.len(), 3);
        assert!(
            f[0].starts_with("SET GLOBAL mysnap_replay.replicate_rewrite_db = _utf8mb4 0x"),
            "{}",
            f[0]
        );
        // The wildcard rule's bytes: shop\_2.%,crm.%
        assert!(f[1].ends_with(&hex::encode("shop\\_2.%,crm.%")), "{}", f[1]);
        assert!(d
            .change_source("127.0.0.1", 4000, "pw", "b.000001", 1234)
            .contains("MASTER_LOG_POS=1234, MASTER_USE_GTID=no"));
    }

    #[test]
    fn mysql_statements_use_channels_and_8_0_23_words() {
        let d = Dialect::MySql;
        assert_eq!(
            d.status(),
            "SHOW REPLICA STATUS FOR CHANNEL 'mysnap_replay'"
        );
        assert_eq!(d.start(), "START REPLICA FOR CHANNEL 'mysnap_replay'");
        assert_eq!(d.reset(), "RESET REPLICA ALL FOR CHANNEL 'mysnap_replay'");
        assert_eq!(d.parallel_variable(), "replica_parallel_workers");
        assert_eq!(
            d.filters(&filter()).unwrap(),
            vec!["CHANGE REPLICATION FILTER REPLICATE_REWRITE_DB = ((`shop`,`shop_2`)), REPLICATE_WILD_DO_TABLE = ('shop\\\\_2.%', 'crm.%'), REPLICATE_IGNORE_TABLE = (`shop_2`.`log`) FOR CHANNEL 'mysnap_replay'".to_string()]
        );
        let c = d.change_source("10.0.0.5", 4000, "pw", "binlog.000042", 4);
        assert!(
            c.starts_with("CHANGE REPLICATION SOURCE TO SOURCE_HOST='10.0.0.5', SOURCE_PORT=4000"),
            "{c}"
        );
        assert!(c.ends_with("SOURCE_AUTO_POSITION=0, SOURCE_SSL=0, SOURCE_HEARTBEAT_PERIOD=1, SOURCE_CONNECT_RETRY=1 FOR CHANNEL 'mysnap_replay'"), "{c}");
        assert!(d
            .filters(&ReplayFilter {
                databases: vec!["a,b".into()],
                ..Default::default()
            })
            .is_err());
    }

    #[test]
    fn a_recorded_mysql_8_4_status_row_gives_the_applied_position() {
        // Column names and values as MySQL 8.4 prints SHOW REPLICA STATUS (a subset).
        let row = [
            ("Replica_IO_State", "Waiting for source to send event"),
            ("Source_Log_File", "binlog.000003"),
            ("Read_Source_Log_Pos", "157"),
            ("Relay_Source_Log_File", "binlog.000003"),
            ("Replica_IO_Running", "Yes"),
            ("Replica_SQL_Running", "Yes"),
            ("Last_SQL_Error", ""),
            ("Exec_Source_Log_Pos", "157"),
            ("Last_IO_Error", ""),
        ];
        let get = |n: &str| {
            row.iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        };
        let a = Dialect::MySql.applied(&get).unwrap();
        assert_eq!(
            (a.file.as_str(), a.pos, a.io_running),
            ("binlog.000003", 157, true)
        );
        assert!(
            Dialect::MariaDb.applied(&get).is_none(),
            "MariaDB's column names differ"
        );
    }
}

//! mysnap's integration tests: one binary (so the harness and the crate are built and
//! linked once), one module per concern, all against throwaway `mariadbd` servers that
//! `support` starts, with the stock client tools as the only judge.

mod support;

mod bad_input;
mod binlog_archive;
mod connection;
mod consistency;
mod gentle;
mod harness;
mod locks;
mod operator;
mod pitr;
mod repository;
mod restore_options;
mod resume;
mod roundtrip;
mod tampered_dump;
mod whole_server;

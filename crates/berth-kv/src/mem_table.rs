//! An in-memory table for the unit tests of the operations.

use crate::{Read, Table};
use std::collections::BTreeMap;
use std::io;

#[derive(Default, Clone, Debug, PartialEq)]
pub struct Mem(pub BTreeMap<String, String>);

impl Read for Mem {
    fn get(&self, key: &str) -> io::Result<Option<String>> {
        Ok(self.0.get(key).cloned())
    }
    fn scan(&self, prefix: &str) -> io::Result<Vec<(String, String)>> {
        Ok(self
            .0
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}

impl Table for Mem {
    fn put(&mut self, key: &str, value: &str) -> io::Result<()> {
        self.0.insert(key.into(), value.into());
        Ok(())
    }
    fn delete(&mut self, key: &str) -> io::Result<()> {
        self.0.remove(key);
        Ok(())
    }
}

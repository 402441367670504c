//! Per-thread caches of built-once lookup structures (chunkers, skymaps): SQL calls them once
//! per row with the same parameters, and building one costs hundreds of trig calls.

use std::cell::RefCell;
use std::rc::Rc;
use std::thread::LocalKey;

use crate::error::SkyResult;

/// How many differently parameterised structures a cache keeps (oldest evicted first).
const CAPACITY: usize = 4;

/// The cached entry that `matches`, or a new one from `build` (cached unless it failed).
pub fn cached<T>(
    cache: &'static LocalKey<RefCell<Vec<Rc<T>>>>,
    matches: impl Fn(&T) -> bool,
    build: impl FnOnce() -> SkyResult<T>,
) -> SkyResult<Rc<T>> {
    if let Some(hit) = cache.with(|c| c.borrow().iter().find(|k| matches(k)).cloned()) {
        return Ok(hit);
    }
    let k = Rc::new(build()?);
    cache.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= CAPACITY {
            c.remove(0);
        }
        c.push(k.clone());
    });
    Ok(k)
}

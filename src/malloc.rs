//! glibc's malloc tuned for a dump of many tables.
//!
//! glibc raises its mmap threshold to the size of each large block freed, so that later
//! blocks of that size come from the heap. A dump opens a gzip compressor for every data
//! file (zlib-rs asks for one block of 320 to 384 KiB) and frees it when the file is done,
//! while the manifest's small entries keep growing between those blocks: the heap cannot
//! shrink, and peak RSS grew with the number of tables (gzip, 2 sessions: 45 to 55 MiB
//! for 1000 tables, 95 MiB for 3000). A fixed threshold of 320 KiB sends those blocks to
//! mmap, back to the system when freed (22 MiB for 3000 tables), and keeps the
//! restore's 256 KiB read blocks on the heap; the dump recycles its 1 MiB row blocks.
//! The price is the compressor's pages faulted in again for each file: about 70 page
//! faults per gzip file, 28 per zstd file (1000 files: 80k faults instead of 11k).

#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn tune() {
    use std::ffi::c_int;
    /// `M_MMAP_THRESHOLD` in glibc's malloc.h.
    const M_MMAP_THRESHOLD: c_int = -3;
    extern "C" {
        fn mallopt(param: c_int, value: c_int) -> c_int;
    }
    // SAFETY: mallopt only changes allocator parameters; called before any thread starts.
    unsafe {
        mallopt(M_MMAP_THRESHOLD, 320 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune() {}

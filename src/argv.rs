//! Hiding a password given as `-pSECRET` or `--password=SECRET` from the process list, as
//! the mysql client does: the bytes of our own argv are overwritten once parsed.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod imp {
    use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

    static ARGC: AtomicUsize = AtomicUsize::new(0);
    static ARGV: AtomicPtr<*mut u8> = AtomicPtr::new(std::ptr::null_mut());

    // glibc passes argc and argv to .init_array functions; this keeps the original vector.
    #[used]
    #[link_section = ".init_array"]
    static CAPTURE: extern "C" fn(i32, *mut *mut u8, *mut *mut u8) = capture;

    extern "C" fn capture(argc: i32, argv: *mut *mut u8, _env: *mut *mut u8) {
        ARGC.store(argc.max(0) as usize, Ordering::Relaxed);
        ARGV.store(argv, Ordering::Relaxed);
    }

    pub fn scrub_passwords() {
        let argc = ARGC.load(Ordering::Relaxed);
        let argv = ARGV.load(Ordering::Relaxed);
        if argv.is_null() {
            return;
        }
        for i in 1..argc {
            // SAFETY: argv holds argc valid NUL-terminated strings for the process's life;
            // we only overwrite bytes before each terminator.
            unsafe {
                let arg = *argv.add(i);
                if arg.is_null() {
                    continue;
                }
                let len = std::ffi::CStr::from_ptr(arg as *const std::ffi::c_char)
                    .to_bytes()
                    .len();
                let bytes = std::slice::from_raw_parts_mut(arg, len);
                let start = if bytes.starts_with(b"--password=") {
                    11
                } else if bytes.starts_with(b"-p") && !bytes.starts_with(b"--") && len > 2 {
                    2
                } else {
                    continue;
                };
                for b in &mut bytes[start..] {
                    *b = b'x';
                }
            }
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod imp {
    pub fn scrub_passwords() {}
}

pub use imp::scrub_passwords;

//! A data file read back as decompressed blocks, on a blocking thread, for whichever way
//! its rows are sent.

use std::io::Read;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::format::Codec;

/// Decompressed bytes per block handed to the server.
const READ_BLOCK: usize = 256 * 1024;

/// Opens a data file's stored bytes, wherever they live (a function: a retried load
/// reads the file again).
pub(crate) type Opener = Arc<dyn Fn() -> std::io::Result<Box<dyn Read + Send>> + Send + Sync>;

/// Decompressed blocks of a data file, read ahead on a blocking thread; the bounded channel
/// keeps memory to a few blocks, and the thread stops when the receiver is dropped.
/// `on_read` is told each block's size as it is read.
pub(super) fn read_blocks(
    open: Opener,
    codec: Codec,
    mut on_read: impl FnMut(usize) + Send + 'static,
) -> mpsc::Receiver<std::io::Result<Vec<u8>>> {
    let (tx, rx) = mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let result = (|| -> std::io::Result<()> {
            let file = open()?;
            let mut input = codec.decoder(std::io::BufReader::with_capacity(READ_BLOCK, file))?;
            loop {
                let mut block = vec![0u8; READ_BLOCK];
                let n = read_full(&mut input, &mut block)?;
                if n == 0 {
                    return Ok(());
                }
                block.truncate(n);
                on_read(n);
                if tx.blocking_send(Ok(block)).is_err() {
                    return Ok(());
                }
            }
        })();
        if let Err(e) = result {
            let _ = tx.blocking_send(Err(e));
        }
    });
    rx
}

/// Fills `buf` as far as the input goes (a decoder may return less than asked before
/// its end); returns the bytes read, short only at the end.
fn read_full(input: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

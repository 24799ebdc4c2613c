//! Many datagrams per system call: recvmmsg(2) and sendmmsg(2). Under
//! load a DNS socket holds dozens of queries; taking them, and sending
//! their answers, a batch at a time spares most of the per-query system
//! calls and wake-ups that held the server near dnsmasq's rate.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// Datagrams per call.
pub const BATCH: usize = 32;
/// Room per query; a longer one arrives cut, and reads as malformed.
const SLOT: usize = 4096;

/// Buffers for one batch, reused from call to call. Holds no pointers, so
/// a task may keep it across awaits.
pub struct Batch {
    bufs: Vec<u8>,
    addrs: Vec<libc::sockaddr_storage>,
    namelens: Vec<libc::socklen_t>,
    lens: Vec<usize>,
    /// Answers to send: the query's slot and the answer.
    pub out: Vec<(usize, Vec<u8>)>,
}

impl Default for Batch {
    fn default() -> Batch {
        Batch {
            bufs: vec![0; BATCH * SLOT],
            // SAFETY: an all-zero sockaddr_storage is a valid (AF_UNSPEC) value.
            addrs: vec![unsafe { zeroed() }; BATCH],
            namelens: vec![0; BATCH],
            lens: vec![0; BATCH],
            out: Vec::with_capacity(BATCH),
        }
    }
}

impl Batch {
    /// Receives up to [`BATCH`] datagrams without waiting; how many came.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        // SAFETY: all-zero iovec and mmsghdr values are valid (null
        // pointers, zero lengths); every pointer set below points into
        // `self`'s buffers, which outlive the call.
        let mut iov: [libc::iovec; BATCH] = unsafe { zeroed() };
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        for (i, (v, h)) in iov.iter_mut().zip(hdrs.iter_mut()).enumerate() {
            v.iov_base = self.bufs[i * SLOT..].as_mut_ptr().cast();
            v.iov_len = SLOT;
            h.msg_hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_iov = v;
            h.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: `hdrs` describes BATCH writable buffers and addresses.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        for (i, h) in hdrs.iter().enumerate().take(n) {
            self.lens[i] = h.msg_len as usize;
            self.namelens[i] = h.msg_hdr.msg_namelen;
        }
        self.out.clear();
        Ok(n)
    }

    /// The `i`th datagram received.
    pub fn datagram(&self, i: usize) -> &[u8] {
        &self.bufs[i * SLOT..i * SLOT + self.lens[i].min(SLOT)]
    }

    /// Who sent the `i`th datagram.
    pub fn sender(&self, i: usize) -> Option<SocketAddr> {
        let a = &self.addrs[i];
        match a.ss_family as libc::c_int {
            libc::AF_INET => {
                // SAFETY: the kernel wrote a sockaddr_in for AF_INET.
                let v4: &libc::sockaddr_in =
                    unsafe { &*(a as *const _ as *const libc::sockaddr_in) };
                Some(SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr)),
                    u16::from_be(v4.sin_port),
                )))
            }
            libc::AF_INET6 => {
                // SAFETY: the kernel wrote a sockaddr_in6 for AF_INET6.
                let v6: &libc::sockaddr_in6 =
                    unsafe { &*(a as *const _ as *const libc::sockaddr_in6) };
                Some(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(v6.sin6_addr.s6_addr),
                    u16::from_be(v6.sin6_port),
                    v6.sin6_flowinfo,
                    v6.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }

    /// Sends the answers in `out` from `from` on, each to its query's
    /// sender, without waiting; how many went.
    pub fn send(&mut self, fd: RawFd, from: usize) -> io::Result<usize> {
        let todo = &self.out[from.min(self.out.len())..];
        if todo.is_empty() {
            return Ok(0);
        }
        // SAFETY: as in `recv`; the buffers are only read.
        let mut iov: [libc::iovec; BATCH] = unsafe { zeroed() };
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        let n = todo.len().min(BATCH);
        for (((slot, answer), v), h) in todo.iter().zip(iov.iter_mut()).zip(hdrs.iter_mut()) {
            v.iov_base = answer.as_ptr() as *mut libc::c_void;
            v.iov_len = answer.len();
            h.msg_hdr.msg_name = (&mut self.addrs[*slot] as *mut libc::sockaddr_storage).cast();
            h.msg_hdr.msg_namelen = self.namelens[*slot];
            h.msg_hdr.msg_iov = v;
            h.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: `hdrs` describes `n` readable buffers and addresses.
        let sent =
            unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), n as libc::c_uint, libc::MSG_DONTWAIT) };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(sent as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_batch_comes_in_and_each_answer_goes_back_to_its_sender() {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = server.local_addr().unwrap();
        let clients: Vec<_> = (0..3)
            .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        for (i, c) in clients.iter().enumerate() {
            c.send_to(format!("q{i}").as_bytes(), to).unwrap();
        }
        let mut b = Batch::default();
        let mut got = 0;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while got < 3 && std::time::Instant::now() < deadline {
            match b.recv(server.as_raw_fd()) {
                Ok(n) => {
                    for i in 0..n {
                        let q = String::from_utf8_lossy(b.datagram(i)).to_string();
                        assert_eq!(
                            Some(
                                clients[q[1..].parse::<usize>().unwrap()]
                                    .local_addr()
                                    .unwrap()
                            ),
                            b.sender(i)
                        );
                        b.out.push((i, format!("a{}", &q[1..]).into_bytes()));
                    }
                    got += n;
                    let mut done = 0;
                    while done < b.out.len() {
                        done += b.send(server.as_raw_fd(), done).unwrap();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(got, 3);
        for (i, c) in clients.iter().enumerate() {
            let mut buf = [0u8; 16];
            c.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            let (n, from) = c.recv_from(&mut buf).unwrap();
            assert_eq!((&buf[..n], from), (format!("a{i}").as_bytes(), to));
        }
    }
}

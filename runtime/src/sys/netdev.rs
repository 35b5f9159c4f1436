//! Interface flags through the `SIOCGIFFLAGS`/`SIOCSIFFLAGS` ioctls.
#![allow(unsafe_code)]

use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::libc;
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};

nix::ioctl_readwrite_bad!(get_interface_flags, libc::SIOCGIFFLAGS, libc::ifreq);
nix::ioctl_readwrite_bad!(set_interface_flags, libc::SIOCSIFFLAGS, libc::ifreq);

/// Sets `IFF_UP` on the interface `name` of the current network namespace.
pub(super) fn set_interface_up(name: &str) -> Result<(), Errno> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
        return Err(Errno::EINVAL);
    }
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: `ifreq` is a plain C struct (a name array and a union of integers, sockaddrs and a
    // pointer) for which all-zero bytes are a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(name.bytes()) {
        *slot = byte as libc::c_char;
    }
    // SAFETY: `sock` is an open socket for the duration of the call and `request` is a valid,
    // NUL-terminated `ifreq` that the kernel reads and fills in; no pointer outlives the call.
    unsafe { get_interface_flags(sock.as_raw_fd(), &mut request) }?;
    // SAFETY: SIOCGIFFLAGS just wrote the `ifru_flags` member of the union.
    let flags = unsafe { request.ifr_ifru.ifru_flags };
    let up = libc::IFF_UP as libc::c_short;
    if flags & up != 0 {
        return Ok(());
    }
    request.ifr_ifru.ifru_flags = flags | up;
    // SAFETY: as above; the kernel only reads `request`.
    unsafe { set_interface_flags(sock.as_raw_fd(), &mut request) }?;
    Ok(())
}

//! `ImageFsInfo`: bytes and inodes of the image store, from its records.

use std::time::SystemTime;

use k8s_cri::v1 as cri;

use super::CriImageService;

pub fn image_fs_info(service: &CriImageService) -> cri::ImageFsInfoResponse {
    let usage = service.store.fs_usage();
    let timestamp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    cri::ImageFsInfoResponse {
        image_filesystems: vec![cri::FilesystemUsage {
            timestamp,
            fs_id: Some(cri::FilesystemIdentifier {
                mountpoint: usage.mountpoint.display().to_string(),
            }),
            used_bytes: Some(cri::UInt64Value { value: usage.bytes }),
            inodes_used: Some(cri::UInt64Value {
                value: usage.inodes,
            }),
        }],
        container_filesystems: Vec::new(),
    }
}

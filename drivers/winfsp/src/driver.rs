//! The WinFsp callbacks (Windows only): each converts WinFsp's types and calls [`Volume`].

use std::path::Path;
use std::sync::Arc;

use strongroom_vfs::Vfs;
use winfsp_wrs::{
    CleanupFlags, CreateFileInfo, CreateOptions, DirInfo, FileAccessRights, FileAttributes,
    FileInfo as WinFileInfo, FileSystem, FileSystemInterface, NTSTATUS, PSecurityDescriptor,
    Params, SecurityDescriptor, U16CStr, U16CString, U16String, VolumeInfo as WinVolumeInfo,
    VolumeParams, WriteMode, u16cstr,
};

use crate::status;
use crate::volume::{FileInfo, OpenFile, Volume, WriteAt};

// Our codes are written out for the platform-neutral tests; they must be Windows' own.
const _: () = {
    assert!(status::OBJECT_NAME_NOT_FOUND == winfsp_wrs::STATUS_OBJECT_NAME_NOT_FOUND);
    assert!(status::OBJECT_PATH_NOT_FOUND == winfsp_wrs::STATUS_OBJECT_PATH_NOT_FOUND);
    assert!(status::OBJECT_NAME_COLLISION == winfsp_wrs::STATUS_OBJECT_NAME_COLLISION);
    assert!(status::OBJECT_NAME_INVALID == winfsp_wrs::STATUS_OBJECT_NAME_INVALID);
    assert!(status::NOT_A_DIRECTORY == winfsp_wrs::STATUS_NOT_A_DIRECTORY);
    assert!(status::FILE_IS_A_DIRECTORY == winfsp_wrs::STATUS_FILE_IS_A_DIRECTORY);
    assert!(status::DIRECTORY_NOT_EMPTY == winfsp_wrs::STATUS_DIRECTORY_NOT_EMPTY);
    assert!(status::ACCESS_DENIED == winfsp_wrs::STATUS_ACCESS_DENIED);
    assert!(status::MEDIA_WRITE_PROTECTED == winfsp_wrs::STATUS_MEDIA_WRITE_PROTECTED);
    assert!(status::END_OF_FILE == winfsp_wrs::STATUS_END_OF_FILE);
    assert!(status::INVALID_HANDLE == winfsp_wrs::STATUS_INVALID_HANDLE);
    assert!(status::DISK_FULL == winfsp_wrs::STATUS_DISK_FULL);
    assert!(status::NETWORK_UNREACHABLE == winfsp_wrs::STATUS_NETWORK_UNREACHABLE);
    assert!(status::IO_DEVICE_ERROR == winfsp_wrs::STATUS_IO_DEVICE_ERROR);
    assert!(status::NOT_SUPPORTED == winfsp_wrs::STATUS_NOT_SUPPORTED);
};

/// Everyone may do everything: access is decided by the workspace role (a READER's volume is
/// read-only), not by Windows ACLs, which a workspace does not store.
const SECURITY: &U16CStr = u16cstr!("O:BAG:BAD:P(A;;FA;;;SY)(A;;FA;;;BA)(A;;FA;;;WD)");

/// How long Windows may cache file information, in milliseconds (as FUSE's time-to-live).
const INFO_TIMEOUT_MS: u32 = 1000;

/// The WinFsp file system: the volume and its one security descriptor.
struct WinFs {
    volume: Volume,
    security: SecurityDescriptor,
}

/// An open file as WinFsp holds it (the `Arc` is WinFsp's file descriptor).
type Handle = Arc<OpenFile>;

fn path(name: &U16CStr) -> Result<String, NTSTATUS> {
    name.to_string().map_err(|_| status::OBJECT_NAME_INVALID)
}

fn win_info(info: FileInfo) -> WinFileInfo {
    let mut out = WinFileInfo::default();
    out.set_file_attributes(FileAttributes(info.attributes))
        .set_file_size(info.size)
        .set_allocation_size(info.allocation_size)
        .set_time(info.time)
        .set_index_number(info.index_number)
        .set_hard_links(1);
    out
}

impl FileSystemInterface for WinFs {
    type FileContext = Handle;

    const GET_VOLUME_INFO_DEFINED: bool = true;
    const GET_SECURITY_BY_NAME_DEFINED: bool = true;
    const CREATE_DEFINED: bool = true;
    const OPEN_DEFINED: bool = true;
    const OVERWRITE_DEFINED: bool = true;
    const CLEANUP_DEFINED: bool = true;
    const CLOSE_DEFINED: bool = true;
    const READ_DEFINED: bool = true;
    const WRITE_DEFINED: bool = true;
    const FLUSH_DEFINED: bool = true;
    const GET_FILE_INFO_DEFINED: bool = true;
    const SET_BASIC_INFO_DEFINED: bool = true;
    const SET_FILE_SIZE_DEFINED: bool = true;
    const CAN_DELETE_DEFINED: bool = true;
    const RENAME_DEFINED: bool = true;
    const GET_SECURITY_DEFINED: bool = true;
    const READ_DIRECTORY_DEFINED: bool = true;
    const GET_DIR_INFO_BY_NAME_DEFINED: bool = true;

    fn get_volume_info(&self) -> Result<WinVolumeInfo, NTSTATUS> {
        let info = self.volume.volume_info();
        let label = U16String::from_str(&info.label);
        WinVolumeInfo::new(info.total, info.free, &label).map_err(|_| status::OBJECT_NAME_INVALID)
    }

    fn get_security_by_name(
        &self,
        file_name: &U16CStr,
        _find_reparse_point: impl Fn() -> Option<FileAttributes>,
    ) -> Result<(FileAttributes, PSecurityDescriptor, bool), NTSTATUS> {
        let attributes = self.volume.attributes_by_name(&path(file_name)?)?;
        Ok((FileAttributes(attributes), self.security.as_ptr(), false))
    }

    fn create(
        &self,
        file_name: &U16CStr,
        create_file_info: CreateFileInfo,
        _security_descriptor: SecurityDescriptor,
    ) -> Result<(Handle, WinFileInfo), NTSTATUS> {
        let (file, info) = self
            .volume
            .create(&path(file_name)?, create_file_info.create_options.0)?;
        Ok((Arc::new(file), win_info(info)))
    }

    fn open(
        &self,
        file_name: &U16CStr,
        create_options: CreateOptions,
        granted_access: FileAccessRights,
    ) -> Result<(Handle, WinFileInfo), NTSTATUS> {
        let (file, info) =
            self.volume
                .open(&path(file_name)?, create_options.0, granted_access.0)?;
        Ok((Arc::new(file), win_info(info)))
    }

    fn overwrite(
        &self,
        file_context: Handle,
        _file_attributes: FileAttributes,
        _replace_file_attributes: bool,
        _allocation_size: u64,
    ) -> Result<WinFileInfo, NTSTATUS> {
        self.volume.overwrite(&file_context).map(win_info)
    }

    fn cleanup(&self, file_context: Handle, file_name: Option<&U16CStr>, flags: CleanupFlags) {
        let name = file_name.and_then(|n| n.to_string().ok());
        self.volume.cleanup(
            &file_context,
            name.as_deref(),
            flags.is(CleanupFlags::DELETE),
        );
    }

    fn close(&self, file_context: Handle) {
        // WinFsp hands over its last reference here; other clones are gone.
        match Arc::try_unwrap(file_context) {
            Ok(file) => self.volume.close(file),
            Err(_) => tracing::warn!("a file closed while WinFsp still used it"),
        }
    }

    fn read(
        &self,
        file_context: Handle,
        buffer: &mut [u8],
        offset: u64,
    ) -> Result<usize, NTSTATUS> {
        self.volume.read(&file_context, buffer, offset)
    }

    fn write(
        &self,
        file_context: Handle,
        buffer: &[u8],
        mode: WriteMode,
    ) -> Result<(usize, WinFileInfo), NTSTATUS> {
        let at = match mode {
            WriteMode::Normal { offset } => WriteAt::Offset(offset),
            WriteMode::ConstrainedIO { offset } => WriteAt::WithinSize(offset),
            WriteMode::WriteToEOF => WriteAt::End,
        };
        let (written, info) = self.volume.write(&file_context, buffer, at)?;
        Ok((written, win_info(info)))
    }

    fn flush(&self, file_context: Handle) -> Result<WinFileInfo, NTSTATUS> {
        let info = self.volume.flush(Some(&file_context))?;
        Ok(info.map(win_info).unwrap_or_default())
    }

    fn get_file_info(&self, file_context: Handle) -> Result<WinFileInfo, NTSTATUS> {
        self.volume.file_info(&file_context).map(win_info)
    }

    fn set_basic_info(
        &self,
        file_context: Handle,
        _file_attributes: FileAttributes,
        _creation_time: u64,
        _last_access_time: u64,
        last_write_time: u64,
        _change_time: u64,
    ) -> Result<WinFileInfo, NTSTATUS> {
        self.volume
            .set_times(&file_context, last_write_time)
            .map(win_info)
    }

    fn set_file_size(
        &self,
        file_context: Handle,
        new_size: u64,
        set_allocation_size: bool,
    ) -> Result<WinFileInfo, NTSTATUS> {
        self.volume
            .set_size(&file_context, new_size, set_allocation_size)
            .map(win_info)
    }

    fn can_delete(&self, file_context: Handle, _file_name: &U16CStr) -> Result<(), NTSTATUS> {
        self.volume.can_delete(&file_context)
    }

    fn rename(
        &self,
        _file_context: Handle,
        file_name: &U16CStr,
        new_file_name: &U16CStr,
        replace_if_exists: bool,
    ) -> Result<(), NTSTATUS> {
        self.volume
            .rename(&path(file_name)?, &path(new_file_name)?, replace_if_exists)
    }

    fn get_security(&self, _file_context: Handle) -> Result<PSecurityDescriptor, NTSTATUS> {
        Ok(self.security.as_ptr())
    }

    fn read_directory(
        &self,
        file_context: Handle,
        marker: Option<&U16CStr>,
        mut add_dir_info: impl FnMut(DirInfo) -> bool,
    ) -> Result<(), NTSTATUS> {
        let marker = marker.map(path).transpose()?;
        for (name, info) in self
            .volume
            .read_directory(&file_context, marker.as_deref())?
        {
            if !add_dir_info(DirInfo::from_str(win_info(info), &name)) {
                break;
            }
        }
        Ok(())
    }

    fn get_dir_info_by_name(
        &self,
        file_context: Handle,
        file_name: &U16CStr,
    ) -> Result<WinFileInfo, NTSTATUS> {
        self.volume
            .dir_info_by_name(&file_context, &path(file_name)?)
            .map(win_info)
    }
}

/// Why a workspace could not be mounted.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// WinFsp is not installed.
    #[error("WinFsp is not installed (https://winfsp.dev/rel/): {0}")]
    NotInstalled(String),
    /// The mount point is not usable.
    #[error(
        "{0} cannot be a mount point: use a free drive letter (\"S:\") or a folder that does not exist yet"
    )]
    BadMountPoint(String),
    /// WinFsp refused.
    #[error("WinFsp refused to mount (NTSTATUS {0:#010X})")]
    Refused(u32),
}

/// A running mount; [`Mounted::unmount`] stops it.
pub struct Mounted {
    file_system: FileSystem,
}

impl Mounted {
    /// Stops serving and removes the drive letter or folder.
    pub fn unmount(self) {
        self.file_system.stop();
    }
}

/// Mounts `vfs` on `mount_point` (a drive letter such as `S:`, or a folder that does not exist
/// yet, as WinFsp requires), labelled `label` in Explorer.
pub fn mount(vfs: Arc<Vfs>, mount_point: &Path, label: &str) -> Result<Mounted, MountError> {
    winfsp_wrs::init().map_err(|e| MountError::NotInstalled(e.to_string()))?;
    let read_only = vfs.read_only();
    let security = SecurityDescriptor::from_wstr(SECURITY)
        .map_err(|_| MountError::Refused(status::IO_DEVICE_ERROR as u32))?;
    let mut volume_params = VolumeParams::default();
    volume_params
        .set_sector_size(512)
        .set_sectors_per_allocation_unit(8)
        .set_max_component_length(255)
        .set_case_sensitive_search(true)
        .set_case_preserved_names(true)
        .set_unicode_on_disk(true)
        .set_persistent_acls(false)
        .set_post_cleanup_when_modified_only(true)
        .set_read_only_volume(read_only)
        .set_file_info_timeout(INFO_TIMEOUT_MS)
        .set_volume_info_timeout(INFO_TIMEOUT_MS)
        .set_dir_info_timeout(INFO_TIMEOUT_MS);
    let _ = volume_params.set_file_system_name(u16cstr!("Strongroom"));
    let params = Params {
        volume_params,
        ..Default::default()
    };
    let point = U16CString::from_os_str(mount_point.as_os_str())
        .map_err(|_| MountError::BadMountPoint(mount_point.display().to_string()))?;
    let file_system = FileSystem::start(
        params,
        Some(&point),
        WinFs {
            volume: Volume::new(vfs, label),
            security,
        },
    )
    .map_err(|status| MountError::Refused(status as u32))?;
    Ok(Mounted { file_system })
}

# Installation layout and the deb/rpm packages (CPack). Build them with
#   cmake -S . -B build -DCMAKE_INSTALL_PREFIX=/usr && cmake --build build --target package
# (scripts/package.sh does exactly this and checks the results).
include(GNUInstallDirs)

# Man pages, compressed as Debian policy wants; s3rdmafs.toml(5) is rendered
# from the configuration field table by the daemon itself.
set(man_dir ${CMAKE_BINARY_DIR}/man)
file(MAKE_DIRECTORY ${man_dir})
add_custom_command(
  OUTPUT ${man_dir}/s3rdmafs.toml.5
  COMMAND sh -c "ASAN_OPTIONS=detect_leaks=0 '$<TARGET_FILE:s3rdmafs>' --print-config-reference > '${man_dir}/s3rdmafs.toml.5'"
  DEPENDS s3rdmafs VERBATIM
  COMMENT "Rendering s3rdmafs.toml(5) from the config field table")
set(man_pages
    ${CMAKE_SOURCE_DIR}/man/s3rdmafs.8 ${CMAKE_SOURCE_DIR}/man/s3rdma-server.8
    ${CMAKE_SOURCE_DIR}/man/mount.s3rdmafs.8 ${CMAKE_SOURCE_DIR}/man/s3rdmafs-probe.8
    ${CMAKE_SOURCE_DIR}/man/s3rdmafs-semantics.7 ${man_dir}/s3rdmafs.toml.5)
set(man_gz)
foreach(page ${man_pages})
  get_filename_component(name ${page} NAME)
  string(REGEX MATCH "[0-9]$" section ${name})
  add_custom_command(OUTPUT ${man_dir}/${name}.gz
                     COMMAND sh -c "gzip -9nc '${page}' > '${man_dir}/${name}.gz'"
                     DEPENDS ${page} VERBATIM)
  list(APPEND man_gz ${man_dir}/${name}.gz)
  install(FILES ${man_dir}/${name}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
endforeach()
add_custom_target(man_pages ALL DEPENDS ${man_gz})

add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/changelog.Debian.gz
                   COMMAND sh -c "gzip -9nc '${CMAKE_SOURCE_DIR}/packaging/debian/changelog' > '${CMAKE_BINARY_DIR}/changelog.Debian.gz'"
                   DEPENDS ${CMAKE_SOURCE_DIR}/packaging/debian/changelog VERBATIM)
add_custom_target(debian_changelog ALL DEPENDS ${CMAKE_BINARY_DIR}/changelog.Debian.gz)

set(S3RDMAFS_UNIT_DIR /lib/systemd/system CACHE PATH "where systemd units go")
install(FILES ${CMAKE_SOURCE_DIR}/systemd/s3rdmafs@.service ${CMAKE_SOURCE_DIR}/systemd/s3rdma-server.service
              ${CMAKE_SOURCE_DIR}/systemd/s3rdma-gateway.service
        DESTINATION ${S3RDMAFS_UNIT_DIR})
install(PROGRAMS ${CMAKE_SOURCE_DIR}/packaging/mount.s3rdmafs DESTINATION ${CMAKE_INSTALL_SBINDIR})
install(FILES ${CMAKE_SOURCE_DIR}/packaging/example.toml ${CMAKE_SOURCE_DIR}/packaging/server.toml.example
              ${CMAKE_SOURCE_DIR}/packaging/gateway.toml.example
        DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/s3rdmafs)
install(FILES ${CMAKE_SOURCE_DIR}/packaging/debian/copyright ${CMAKE_BINARY_DIR}/changelog.Debian.gz
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
# Not an upload to the Debian archive: there is no ITP bug to close.
install(FILES ${CMAKE_SOURCE_DIR}/packaging/debian/lintian-overrides
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/lintian/overrides RENAME s3rdmafs)
# The default write.staging_dir. It only ever holds anonymous files, so it is
# empty whenever no daemon runs, and dpkg/rpm remove it with the package.
install(DIRECTORY DESTINATION ${CMAKE_INSTALL_FULL_LOCALSTATEDIR}/cache/s3rdmafs)

set(CPACK_PACKAGE_NAME s3rdmafs)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "s3rdmafs maintainers <maintainers@s3rdmafs.dev>")
set(CPACK_PACKAGE_VENDOR "s3rdmafs")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "S3 buckets as POSIX files, with an RDMA data path")
set(CPACK_PACKAGE_HOMEPAGE_URL "https://github.com/s3rdmafs/s3rdmafs")
set(CPACK_STRIP_FILES ON)
set(CPACK_GENERATOR "DEB;RPM")
string(CONCAT long_description
    "s3rdmafs mounts an S3 bucket, or a prefix of one, as a read-write POSIX\n"
    "filesystem for unmodified programs on GPU servers and HPC clusters. Its page\n"
    "cache is one RDMA-registered memory arena: object ranges are fetched with\n"
    "read-ahead over RDMA for S3-compatible storage (x-amz-rdma-token) or HTTP(S).\n"
    "The package also has s3rdma-server, a reference S3 endpoint over a local\n"
    "directory with the RDMA data path, the mount(8) helper, s3rdmafs-probe and\n"
    "systemd units.")

# CPack puts the summary first itself: this is the extended description.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "${long_description}")
set(CPACK_DEBIAN_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "fuse3")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${CMAKE_SOURCE_DIR}/packaging/debian/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)

set(CPACK_RPM_PACKAGE_RELEASE 1)
set(CPACK_RPM_FILE_NAME RPM-DEFAULT)
set(CPACK_RPM_PACKAGE_LICENSE "Apache-2.0")
set(CPACK_RPM_PACKAGE_GROUP "System Environment/Base")
set(CPACK_RPM_PACKAGE_DESCRIPTION "${long_description}")
set(CPACK_RPM_PACKAGE_REQUIRES "fuse3")
set(CPACK_RPM_USER_FILELIST "%config(noreplace) /etc/s3rdmafs/example.toml"
                            "%config(noreplace) /etc/s3rdmafs/server.toml.example"
                            "%config(noreplace) /etc/s3rdmafs/gateway.toml.example")
set(CPACK_RPM_EXCLUDE_FROM_AUTO_FILELIST_ADDITION /etc /lib /lib/systemd /lib/systemd/system
    /usr/share/man/man5 /usr/share/man/man7 /usr/share/man/man8 /usr/share/doc /usr/share/lintian
    /usr/share/lintian/overrides /usr/sbin /usr/share/man /var /var/cache)
include(CPack)

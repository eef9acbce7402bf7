# Install rules: header, liblode.so + liblode.a, a CMake package
# (find_package(lode) -> lode::lode shared, lode::lode-static) and lode.pc.
# Included from the top-level CMakeLists.txt after alloc/.
include(CMakePackageConfigHelpers)

set(LODE_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/lode CACHE STRING
    "Where lodeConfig.cmake is installed")

install(TARGETS lode lode-static EXPORT lodeTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT dev
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)
install(FILES ${PROJECT_SOURCE_DIR}/alloc/include/lode.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)

install(EXPORT lodeTargets NAMESPACE lode:: FILE lodeTargets.cmake
        DESTINATION ${LODE_INSTALL_CMAKEDIR} COMPONENT dev)

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/lodeConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/lodeConfig.cmake
                              INSTALL_DESTINATION ${LODE_INSTALL_CMAKEDIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/lodeConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/lodeConfig.cmake ${PROJECT_BINARY_DIR}/lodeConfigVersion.cmake
        DESTINATION ${LODE_INSTALL_CMAKEDIR} COMPONENT dev)

# pkg-config.  The prefix is relative to the .pc file, so an installed tree
# can move (cmake --install --prefix X works whatever CMAKE_INSTALL_PREFIX was).
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(LODE_PC_LIBDIR "${CMAKE_INSTALL_FULL_LIBDIR}")
  set(LODE_PC_INCLUDEDIR "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
  set(LODE_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH _lode_pc_up "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")
  string(REGEX REPLACE "/$" "" _lode_pc_up "${_lode_pc_up}")
  set(LODE_PC_PREFIX "\${pcfiledir}/${_lode_pc_up}")
  set(LODE_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
  set(LODE_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/lode.pc.in ${PROJECT_BINARY_DIR}/lode.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/lode.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)

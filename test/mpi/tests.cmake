# ctest: the ffcheck programs under plain mpirun in one namespace, with Open MPI's own BTLs (shared
# memory and TCP). This proves the programs themselves right before they judge the freeflow BTL (the
# end-to-end suite runs manifest.json through ffrun), and --inject-fault proves their checks can fail.
set(FFCHECK_EXPECT ${CMAKE_CURRENT_SOURCE_DIR}/run_expect.sh)
# Oversubscribed on small machines: yield when idle, no binding (every rank would share core 0).
set(FFCHECK_MPIRUN ${MPIEXEC_EXECUTABLE} --oversubscribe --allow-run-as-root --bind-to none
    --mca mpi_yield_when_idle 1 --mca pml ob1)
# The programs' own watchdog fires before ctest's timeout, so that mpirun ends the job cleanly.
set(FFCHECK_WATCHDOG --timeout 100)

# The one environment setting that loads the freeflow BTL into a plain mpirun (docs/btl.md); Open MPI's
# own components stay in its pkglibdir under OMPI_PREFIX (btl/CMakeLists.txt).
set(FFCHECK_FREEFLOW_ENV
    "OMPI_MCA_mca_base_component_path=${FREEFLOW_BTL_DIR}:${OMPI_PREFIX}/lib/openmpi3")

# ffcheck_add_test(<name> RANKS <n> BTL <btl> PROGRAM <program> [ARGS ...] [EXPECT ...])
# BTL freeflow runs with the setting above.
function(ffcheck_add_test name)
  cmake_parse_arguments(T "" "RANKS;BTL;PROGRAM" "ARGS;EXPECT" ${ARGN})
  if(NOT T_EXPECT)
    set(T_EXPECT --exit zero --require "subtests passed" --forbid "^FAIL|TIMEOUT")
  endif()
  add_test(NAME ffcheck.${name}
    COMMAND ${FFCHECK_EXPECT} ${T_EXPECT} --
      ${FFCHECK_MPIRUN} --mca btl self,${T_BTL} -n ${T_RANKS}
      $<TARGET_FILE:ffcheck_${T_PROGRAM}> ${FFCHECK_WATCHDOG} ${T_ARGS})
  set_tests_properties(ffcheck.${name} PROPERTIES TIMEOUT 150 LABELS mpi)
  if(T_BTL STREQUAL "freeflow")
    set_tests_properties(ffcheck.${name} PROPERTIES ENVIRONMENT "${FFCHECK_FREEFLOW_ENV}")
  endif()
endfunction()

# Every program passes with shared memory (4 ranks) and TCP (3 ranks).
set(FFCHECK_QUICK_p2p --max-size 4M)
foreach(program p2p datatypes collectives threads stress allpairs)
  ffcheck_add_test(${program}.vader RANKS 4 BTL vader PROGRAM ${program} ARGS ${FFCHECK_QUICK_${program}})
  ffcheck_add_test(${program}.tcp RANKS 3 BTL tcp PROGRAM ${program} ARGS ${FFCHECK_QUICK_${program}})
endforeach()

# Without ffrun, in one namespace, the freeflow BTL alone carries every pair, as vader would (with
# 5 ranks: more peers than the 2 cores, so rings are polled while others are descheduled).
foreach(program p2p datatypes collectives threads stress allpairs)
  ffcheck_add_test(${program}.freeflow RANKS 5 BTL freeflow PROGRAM ${program} ARGS ${FFCHECK_QUICK_${program}})
endforeach()

# Ranks with different ring sizes: rank 0's 128 KiB fragments must be cut to fit rank 1's 64 KiB ring (16 KiB
# records; prepare_src's clamp, btl_freeflow_endpoint.h max_record), or its large sends never find room.
add_test(NAME ffcheck.p2p.freeflow-mixed-rings
  COMMAND ${FFCHECK_EXPECT} --exit zero --require "subtests passed" --forbid "^FAIL|TIMEOUT" --
    ${FFCHECK_MPIRUN} --mca btl self,freeflow
      -n 1 -x OMPI_MCA_btl_freeflow_ring_size=1048576 -x OMPI_MCA_btl_freeflow_max_send_size=131072
      $<TARGET_FILE:ffcheck_p2p> ${FFCHECK_WATCHDOG} --max-size 1M --only sizes
      : -n 1 -x OMPI_MCA_btl_freeflow_ring_size=65536 $<TARGET_FILE:ffcheck_p2p> ${FFCHECK_WATCHDOG} --max-size 1M --only sizes)
set_tests_properties(ffcheck.p2p.freeflow-mixed-rings PROPERTIES TIMEOUT 150 LABELS mpi
  ENVIRONMENT "${FFCHECK_FREEFLOW_ENV}")

# The poll schedule under constant churn (docs/btl.md, "Polling many peers"): every ring counts idle
# after one empty pass, so messages keep arriving in idle rings found by the round-robin.
foreach(program stress allpairs threads)
  add_test(NAME ffcheck.${program}.freeflow-idle-churn
    COMMAND ${FFCHECK_EXPECT} --exit zero --require "subtests passed" --forbid "^FAIL|TIMEOUT" --
      ${FFCHECK_MPIRUN} --mca btl self,freeflow --mca btl_freeflow_poll_idle_after 1 -n 5
      $<TARGET_FILE:ffcheck_${program}> ${FFCHECK_WATCHDOG})
  set_tests_properties(ffcheck.${program}.freeflow-idle-churn PROPERTIES TIMEOUT 150 LABELS mpi
    ENVIRONMENT "${FFCHECK_FREEFLOW_ENV}")
endforeach()

# MPI_Comm_spawn: parents and children reach each other through freeflow in both directions.
foreach(btl vader freeflow)
  add_test(NAME ffcheck.spawn.${btl}
    COMMAND ${FFCHECK_EXPECT} --exit zero --require "^PASS spawn" --forbid "^FAIL" --
      ${FFCHECK_MPIRUN} --mca btl self,${btl},tcp --mca btl_tcp_if_include lo -n 2 $<TARGET_FILE:ffcheck_spawn> --children 2)
  set_tests_properties(ffcheck.spawn.${btl} PROPERTIES TIMEOUT 150 LABELS mpi)
endforeach()
set_tests_properties(ffcheck.spawn.freeflow PROPERTIES ENVIRONMENT "${FFCHECK_FREEFLOW_ENV}")
add_test(NAME ffcheck.spawn.freeflow-only
  COMMAND ${FFCHECK_EXPECT} --exit zero --require "^PASS spawn" --forbid "^FAIL" --
    ${FFCHECK_MPIRUN} --mca btl self,freeflow -n 2 $<TARGET_FILE:ffcheck_spawn> --children 2)
set_tests_properties(ffcheck.spawn.freeflow-only PROPERTIES TIMEOUT 150 LABELS mpi ENVIRONMENT "${FFCHECK_FREEFLOW_ENV}")

# --inject-fault corrupts one received byte per subtest and rank: every subtest must FAIL and the
# program must exit 1.
foreach(program p2p datatypes collectives stress allpairs)
  ffcheck_add_test(${program}.inject-fault RANKS 2 BTL vader PROGRAM ${program} ARGS --inject-fault --max-size 2M
    EXPECT --exit 1 --require "^FAIL " --require "differs at offset|wrong: expected" --forbid "^PASS|TIMEOUT")
endforeach()
# ffcheck_threads' thread_level subtest receives no data: the one subtest that passes anyway.
ffcheck_add_test(threads.inject-fault RANKS 2 BTL vader PROGRAM threads ARGS --inject-fault
  EXPECT --exit 1 --require "^FAIL pairs" --require "differs at offset|expected"
         --forbid "^PASS (pairs|anysource|mprobe|blocking|collectives)|TIMEOUT")

# The failure programs: the job must end non-zero, promptly, without any rank hanging.
ffcheck_add_test(abort.vader RANKS 3 BTL vader PROGRAM abort ARGS --rank 1 --code 7
  EXPECT --exit nonzero --require "rank 1 on .* calls MPI_Abort" --forbid "TIMEOUT|MPI_Abort returned|completed")
ffcheck_add_test(abort.freeflow RANKS 3 BTL freeflow PROGRAM abort ARGS --rank 2 --code 9
  EXPECT --exit nonzero --require "rank 2 on .* calls MPI_Abort" --forbid "TIMEOUT|MPI_Abort returned|completed")
foreach(btl vader tcp freeflow)
  ffcheck_add_test(die_midtransfer.${btl} RANKS 3 BTL ${btl} PROGRAM die_midtransfer ARGS --rank 2 --peer 0
    EXPECT --exit nonzero --require "rank 2 on .*SIGKILL to itself" --forbid "TIMEOUT|still running")
endforeach()

# Bad input gets one clear error and exit code 2.
ffcheck_add_test(usage.bad-size RANKS 1 BTL vader PROGRAM p2p ARGS --max-size 12Q
  EXPECT --exit 2 --require "option '--max-size' wants a size from 0 B to 2 GiB-1 .*not '12Q'" --forbid "^PASS|^FAIL")
ffcheck_add_test(usage.too-few-ranks RANKS 1 BTL vader PROGRAM p2p
  EXPECT --exit 2 --require "needs at least 2 ranks" --forbid "^PASS|^FAIL")
ffcheck_add_test(usage.unknown-subtest RANKS 2 BTL vader PROGRAM collectives ARGS --only bcast,nosuch
  EXPECT --exit 2 --require "no subtest named 'nosuch'" --forbid "^PASS|^FAIL")

# ffcheck_rma (docs/onesided.md): every window flavour, synchronisation and operation, MPI_THREAD_MULTIPLE,
# with osc rdma over the freeflow BTL's RDMA module alone (no vader); with that module off no component
# serves the windows at MPI_THREAD_MULTIPLE (Debian excludes osc pt2pt, which refuses it anyway), and with
# --inject-fault every subtest must fail.
set(FFCHECK_RMA_RUN ${FFCHECK_MPIRUN} --mca btl self,freeflow -n 4 $<TARGET_FILE:ffcheck_rma> --big 300000)
add_test(NAME ffcheck.rma.freeflow
  COMMAND ${FFCHECK_EXPECT} --exit zero --require "^PASS rma \\(4 ranks, 18 subtests\\)" --require "PASS dynamic/threads"
    --require "PASS allocate/bulk"
    --forbid "FAIL|SKIP" -- ${FFCHECK_RMA_RUN} --thread-rounds 50)
add_test(NAME ffcheck.rma.freeflow-rdma-off
  COMMAND ${FFCHECK_EXPECT} --exit nonzero --forbid "^PASS rma" -- ${FFCHECK_MPIRUN} --mca btl self,freeflow
    --mca btl_freeflow_rdma 0 -n 2 $<TARGET_FILE:ffcheck_rma> --flavours create --iterations 1)
add_test(NAME ffcheck.rma.inject-fault
  COMMAND ${FFCHECK_EXPECT} --exit nonzero --require "FAIL create/fence" --require "FAIL create/pscw"
    --require "FAIL create/lock:" --require "FAIL create/lock_all" --require "FAIL create/threads"
    --require "FAIL create/bulk" --forbid "^PASS create/"
    -- ${FFCHECK_RMA_RUN} --flavours create --iterations 1 --inject-fault)
# Beside tcp: free lists btl tcp makes while the whole-page MPI_Alloc_mem pool is the default free through it
# after the plugin is unloaded; pinning it (pin_plugin, btl_freeflow_rdma.c) keeps MPI_Finalize from crashing.
add_test(NAME ffcheck.rma.freeflow-tcp
  COMMAND ${FFCHECK_EXPECT} --exit zero --require "^PASS rma \\(2 ranks, 6 subtests\\)" --forbid "FAIL|SKIP|signal" --
    ${FFCHECK_MPIRUN} --mca btl self,freeflow,tcp --mca btl_tcp_if_include lo -n 2 $<TARGET_FILE:ffcheck_rma>
    --flavours allocate --iterations 1)
set_tests_properties(ffcheck.rma.freeflow ffcheck.rma.freeflow-rdma-off ffcheck.rma.inject-fault
  ffcheck.rma.freeflow-tcp PROPERTIES TIMEOUT 150 LABELS mpi ENVIRONMENT "${FFCHECK_FREEFLOW_ENV}")

# ffcheck_nodeshare in one namespace: one node, so every rank shares one group and one window. Proves the
# program right before the manifest runs it across containers (docs/node-sharing.md).
add_test(NAME ffcheck.nodeshare.vader
  COMMAND ${FFCHECK_EXPECT} --exit zero --require "^PASS nodeshare" --forbid "^FAIL" --
    ${FFCHECK_MPIRUN} --mca btl self,vader -n 4 $<TARGET_FILE:ffcheck_nodeshare> --ranks-per-host 4)
set_tests_properties(ffcheck.nodeshare.vader PROPERTIES TIMEOUT 150 LABELS mpi)
# ... and it fails when told that the ranks sit on two hosts: its group check can fail.
add_test(NAME ffcheck.nodeshare.detects-wrong-groups
  COMMAND ${FFCHECK_EXPECT} --exit nonzero --require "^FAIL nodeshare" --require "MPI_COMM_TYPE_SHARED group size" --
    ${FFCHECK_MPIRUN} --mca btl self,vader -n 4 $<TARGET_FILE:ffcheck_nodeshare> --ranks-per-host 2)
set_tests_properties(ffcheck.nodeshare.detects-wrong-groups PROPERTIES TIMEOUT 150 LABELS mpi)
# Names and MPI-IO on the bare host (the e2e suite runs them across containers, test/mpiio.e2e.test.ts):
# this machine's /etc/hosts maps its name to loopback, hence --allow-loopback; the MPI-IO files go to a
# directory of the build tree, which every rank of one host sees.
ffcheck_add_test(names.vader RANKS 3 BTL vader PROGRAM names ARGS --allow-loopback)
file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/mpiio-scratch)
foreach(io ompio romio321)
  set(extra)
  if(io STREQUAL "romio321")
    set(extra --skip-nonblocking-collective) # open-mpi/ompi#4520
  endif()
  add_test(NAME ffcheck.mpiio.${io}
    COMMAND ${FFCHECK_EXPECT} --exit zero --require "all 8 subtests passed" --forbid "^FAIL|TIMEOUT" --
      ${FFCHECK_MPIRUN} --mca btl self,vader --mca io ${io} --mca sharedfp lockedfile -n 3
      $<TARGET_FILE:ffcheck_mpiio> ${FFCHECK_WATCHDOG} --dir ${CMAKE_BINARY_DIR}/mpiio-scratch --expect-io ${io} ${extra})
  set_tests_properties(ffcheck.mpiio.${io} PROPERTIES TIMEOUT 150 LABELS mpi)
endforeach()
# Every subtest that reads data must FAIL with one corrupted byte.
add_test(NAME ffcheck.mpiio.inject-fault
  COMMAND ${FFCHECK_EXPECT} --exit 1 --require "^FAIL independent" --require "^FAIL collective_view" --require "^FAIL shared_pointer"
    --require "^FAIL nonblocking" --require "^FAIL open_delete" --require "^FAIL size_sync" --forbid "TIMEOUT" --
    ${FFCHECK_MPIRUN} --mca btl self,vader --mca io ompio -n 2 $<TARGET_FILE:ffcheck_mpiio> ${FFCHECK_WATCHDOG}
    --dir ${CMAKE_BINARY_DIR}/mpiio-scratch --inject-fault)
set_tests_properties(ffcheck.mpiio.inject-fault PROPERTIES TIMEOUT 150 LABELS mpi)

/*
 * User-facing messages through opal_show_help and help-btl-freeflow.txt, as Open MPI's own components do:
 * under mpirun each rank renders its message and sends it to mpirun, which prints a topic once and then
 * counts the ranks that said the same. Debug output stays on opal_output_verbose (FF_LOG).
 *
 * Open MPI 4.1 looks for help files in its own pkgdatadir (/usr/share/openmpi), which an out-of-tree
 * component must not write to; opal_show_help_add_dir adds a directory to the search path. The file is
 * built next to mca_btl_freeflow.so (btl/CMakeLists.txt), so wherever the component loads from (build/btl
 * on the host, the same path bind-mounted into ffrun's containers, the image under Kubernetes) its help is
 * beside it.
 */
#include "btl_freeflow.h"

#include "opal/util/output.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool help_found;
static char help_dir[PATH_MAX];

void mca_btl_freeflow_help_init(void)
{
    static bool done = false;
    if (done) {
        return;
    }
    done = true;
    Dl_info info;
    /* the directory this component was loaded from */
    if (0 == dladdr((void *) &mca_btl_freeflow_component, &info) || NULL == info.dli_fname ||
        NULL == strrchr(info.dli_fname, '/')) {
        snprintf(help_dir, sizeof(help_dir), "(unknown: dladdr found no path for the component)");
        return;
    }
    const size_t dir_len = (size_t) (strrchr(info.dli_fname, '/') - info.dli_fname);
    if (dir_len >= sizeof(help_dir)) {
        return;
    }
    memcpy(help_dir, info.dli_fname, dir_len);
    help_dir[dir_len] = '\0';
    char path[PATH_MAX + sizeof(MCA_BTL_FREEFLOW_HELP_FILE) + 1];
    snprintf(path, sizeof(path), "%s/%s", help_dir, MCA_BTL_FREEFLOW_HELP_FILE);
    /* Checked once here so that a missing file gets our own fallback below instead of Open MPI's "Sorry! I
     * couldn't open the help file", which names only the topic and is printed by every rank. */
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return;
    }
    close(fd);
    help_found = OPAL_SUCCESS == opal_show_help_add_dir(help_dir);
}

bool mca_btl_freeflow_help_available(const char *topic)
{
    if (OPAL_LIKELY(help_found)) {
        return true;
    }
    opal_output(0,
                "freeflow (rank %s on %s): error '%s', explained in %s, which is missing from %s: reinstall "
                "the freeflow BTL (npm run setup builds the file next to mca_btl_freeflow.so).",
                OPAL_NAME_PRINT(OPAL_PROC_MY_NAME), mca_btl_freeflow_host_name(), topic, MCA_BTL_FREEFLOW_HELP_FILE,
                help_dir[0] ? help_dir : "the component's directory");
    return false;
}

/* Rendered from the help file but printed here rather than relayed through mpirun: Open MPI 4.1.4's relay
 * of a rank's help message (PMIx log, then mpirun unpacks it) now and then loses one ("ORTE_ERROR_LOG:
 * Data unpack would read past end of buffer in file orte/util/show_help.c", seen with its own
 * help-mca-var.txt messages too), and this message is the only account of why the job is aborted. */
void mca_btl_freeflow_print_fatal(const char *message)
{
    char *text = mca_btl_freeflow_help_available("fatal-error")
                     ? opal_show_help_string(MCA_BTL_FREEFLOW_HELP_FILE, "fatal-error", true,
                                             OPAL_NAME_PRINT(OPAL_PROC_MY_NAME), mca_btl_freeflow_host_name(), message)
                     : NULL;
    /* the bare message when the help file is missing or unreadable: it carries the cause */
    opal_output(0, "%s", NULL != text ? text : message);
    free(text);
}

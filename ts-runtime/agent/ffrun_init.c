/*
 * pid 1 of a freeflow container (config.json's process). It only reaps: orphaned orted and rank
 * processes are re-parented to it and would otherwise pile up as zombies (`sleep infinity` never reaps).
 * It takes no arguments and reads no input. Signals from inside the container cannot kill a pid 1 that
 * has no handler for them; teardown ends the container with SIGKILL from outside (runc kill / delete).
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>

static void on_child(int signo) { (void)signo; }

int main(void) {
  sigset_t chld, waiting;
  struct sigaction action = {0};
  action.sa_handler = on_child;
  sigemptyset(&action.sa_mask);
  sigaction(SIGCHLD, &action, NULL);
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, &waiting);
  sigdelset(&waiting, SIGCHLD);
  for (;;) {
    /* Reap everything that has exited, then sleep until the next SIGCHLD (blocked in between: none is lost). */
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    sigsuspend(&waiting);
  }
}

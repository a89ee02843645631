/*
 * Run mode (kruxos-sandbox --run): put one program into the sandbox the spec describes and
 * supervise it to the end. contain.c holds the whole order of steps in three short functions, one
 * per process: the helper's outer process, the sandbox's init, and the workload that becomes the
 * program. Each step is one call into the .c file of its kernel facility.
 */
#ifndef KRX_CONTAIN_H
#define KRX_CONTAIN_H

struct krx_spec;

/*
 * Apply the spec's layers and run its program, writing status lines on status_fd. Returns the
 * helper's exit code (the program's status; 124 on the wall-clock limit); a setup or exec failure
 * does not return but exits 122/123 through die() with the error status line.
 */
int contain(const struct krx_spec *spec, int status_fd);

#endif

// switch_x86_64.S: the fiber context switch (System V x86-64). Saves the callee-saved registers on the
// current stack, stores the stack pointer in *from, loads `to` and restores what that stack saved.
// No system call: a switch costs a few nanoseconds (swapcontext would save the signal mask with one).
//
//   void tome_emu_switch(void** from, void* to);
    .text
    .globl tome_emu_switch
    .hidden tome_emu_switch
    .type tome_emu_switch, @function
tome_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size tome_emu_switch, .-tome_emu_switch

    .section .note.GNU-stack, "", @progbits

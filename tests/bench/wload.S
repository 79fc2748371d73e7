/*
 * wload: a bare-metal write load for the live-dump benchmark (live_bench.py).
 *
 * A multiboot (v1) ELF that QEMU boots with -kernel: it starts in 32-bit
 * protected mode with flat segments and paging off. It rewrites a buffer of
 * guest RAM in an endless loop, every pass with a new value, and after each
 * 16 MiB chunk it writes one '.' to COM1 (port 0x3f8); after each pass a
 * newline. The host timestamps the bytes as they arrive on the serial
 * console, which gives the guest's write throughput without a clock in
 * the guest.
 *
 * The command line (-append) chooses the buffer: "mb=N" its size in MiB
 * (default 256), "at=N" where it starts, in MiB (default 32). Both are
 * rounded down to whole chunks; the buffer must lie in RAM below 4 GiB.
 *
 * Build: gcc -m32 -c -o wload.o wload.S && ld -m elf_i386 -Ttext=0x100000 -o wload.elf wload.o
 */
#define MB_MAGIC    0x1BADB002
#define MB_FLAGS    0
#define COM1        0x3f8
#define CHUNK_SHIFT 24                      /* 16 MiB per progress byte */

    .text
    .globl _start
    .align 4
mb_header:                                  /* in the first 8 KiB of the file */
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)

_start:
    cli
    mov     $stack_top, %esp
    movl    $256, %esi                      /* esi: size in MiB */
    movl    $32, %edi                       /* edi: start in MiB */
    /* The multiboot info (ebx) has a command line when flags bit 2 is set. */
    testl   $4, (%ebx)
    jz      args_done
    movl    16(%ebx), %ebx                  /* ebx: command line */
scan:
    movb    (%ebx), %al
    testb   %al, %al
    jz      args_done
    cmpb    $0x3d, 2(%ebx)
    jne     next
    cmpw    $0x626d, (%ebx)                 /* "mb" */
    je      arg_mb
    cmpw    $0x7461, (%ebx)                 /* "at" */
    je      arg_at
next:
    incl    %ebx
    jmp     scan
arg_mb:
    addl    $3, %ebx
    call    number
    movl    %eax, %esi
    jmp     scan
arg_at:
    addl    $3, %ebx
    call    number
    movl    %eax, %edi
    jmp     scan

args_done:
    shrl    $4, %esi                        /* MiB -> chunks */
    jnz     1f
    movl    $1, %esi
1:  shll    $20, %edi                       /* start address */
    andl    $~((1 << CHUNK_SHIFT) - 1), %edi
    jnz     1f
    movl    $1 << CHUNK_SHIFT, %edi
1:  movl    %edi, buf_start
    movl    %esi, buf_chunks
    /* SSE on (CR0.EM off, CR0.MP on, CR4.OSFXSR): 16-byte stores. */
    movl    %cr0, %eax
    andl    $~4, %eax
    orl     $2, %eax
    movl    %eax, %cr0
    movl    %cr4, %eax
    orl     $0x200, %eax
    movl    %eax, %cr4
    movl    $1, %eax                        /* eax: the value of this pass */

pass:
    movd    %eax, %xmm0
    pshufd  $0, %xmm0, %xmm0
    movl    buf_start, %edi
    movl    buf_chunks, %ecx
chunk:
    leal    (1 << CHUNK_SHIFT)(%edi), %edx  /* edx: end of this chunk */
store:
    movdqa  %xmm0, 0(%edi)
    movdqa  %xmm0, 16(%edi)
    movdqa  %xmm0, 32(%edi)
    movdqa  %xmm0, 48(%edi)
    addl    $64, %edi
    cmpl    %edx, %edi
    jb      store
    movl    %eax, %ebx
    movb    $0x2e, %al
    movw    $COM1, %dx
    outb    %al, %dx
    movl    %ebx, %eax
    decl    %ecx
    jnz     chunk
    movl    %eax, %ebx
    movb    $0x0a, %al
    movw    $COM1, %dx
    outb    %al, %dx
    movl    %ebx, %eax
    incl    %eax
    jmp     pass

/* The decimal number at ebx into eax; ebx ends after it. */
number:
    xorl    %eax, %eax
1:  movzbl  (%ebx), %edx
    subl    $0x30, %edx
    cmpl    $9, %edx
    ja      2f
    imull   $10, %eax, %eax
    addl    %edx, %eax
    incl    %ebx
    jmp     1b
2:  ret

    .data
    .align 4
buf_start:  .long 0
buf_chunks: .long 0

    .bss
    .align 16
    .skip 4096
stack_top:

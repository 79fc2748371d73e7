/* Windows crash dump layouts: DUMP_HEADER64/32, the KDBG offsets, CONTEXT. */
#ifndef DUMP_WIN_DUMP_DEFS_H
#define DUMP_WIN_DUMP_DEFS_H

#include <stddef.h>
#include <stdint.h>

/*
 * All fields are little-endian in guest memory and in the file; the writer
 * converts at the boundary (win_dump.c) so these structs stay plain data.
 */

#define WIN_DUMP_NOTE_HDR_SIZE 24      /* Nhdr (12) + "VMCOREINFO\0" padded to 12 */
#define WIN_DUMP_HDR64_SIZE 8192
#define WIN_DUMP_HDR32_SIZE 4096
#define WIN_DUMP_NOTE_SIZE64 (WIN_DUMP_NOTE_HDR_SIZE + WIN_DUMP_HDR64_SIZE)
#define WIN_DUMP_NOTE_SIZE32 (WIN_DUMP_NOTE_HDR_SIZE + WIN_DUMP_HDR32_SIZE)

#define WIN_DUMP_RUNS64 43
#define WIN_DUMP_RUNS32 86

#define WIN_PAGE_SHIFT 12
#define WIN_PAGE_SIZE (1u << WIN_PAGE_SHIFT)

/* KDDEBUGGER_DATA64 offsets; 32-bit Windows uses the same 64-bit layout. */
#define KDBG_OWNER_TAG_OFFSET           0x10
#define KDBG_KI_BUGCHECK_DATA_OFFSET    0x88
#define KDBG_MM_PFN_DATABASE_OFFSET     0xc0
#define KDBG_KI_PROCESSOR_BLOCK_OFFSET  0x218
#define KDBG_OFFSET_PRCB_CONTEXT_OFFSET 0x338

#define WIN_LIVE_SYSTEM_DUMP 0x161

#define WIN_CTX64_ALL   0x0010001fu   /* AMD64 | CONTROL | INTEGER | FLOATING_POINT |
                                         SEGMENTS | DEBUG_REGISTERS */
#define WIN_CTX32_FULL_DBG 0x00010017u /* i386 | CONTROL | INTEGER | SEGMENTS | DEBUG */

typedef struct __attribute__((packed)) WinDumpPhyMemRun64 {
    uint64_t BasePage;
    uint64_t PageCount;
} WinDumpPhyMemRun64;

typedef struct __attribute__((packed)) WinDumpPhyMemDesc64 {
    uint32_t NumberOfRuns;
    uint32_t unused;
    uint64_t NumberOfPages;
    WinDumpPhyMemRun64 Run[WIN_DUMP_RUNS64];
} WinDumpPhyMemDesc64;

typedef struct __attribute__((packed)) WinDumpExceptionRecord {
    uint32_t ExceptionCode;
    uint32_t ExceptionFlags;
    uint64_t ExceptionRecord;
    uint64_t ExceptionAddress;
    uint32_t NumberParameters;
    uint32_t unused;
    uint64_t ExceptionInformation[15];
} WinDumpExceptionRecord;

/* The bugcheck block KiBugCheckData holds, copied over the header as one piece. */
typedef struct __attribute__((packed)) WinBugcheck64 {
    uint32_t BugcheckCode;
    uint32_t unused0;
    uint64_t BugcheckParameter[4];
} WinBugcheck64;

typedef struct __attribute__((packed)) WinDumpHeader64 {
    char Signature[4];
    char ValidDump[4];
    uint32_t MajorVersion;
    uint32_t MinorVersion;
    uint64_t DirectoryTableBase;
    uint64_t PfnDatabase;
    uint64_t PsLoadedModuleList;
    uint64_t PsActiveProcessHead;
    uint32_t MachineImageType;
    uint32_t NumberProcessors;
    WinBugcheck64 Bugcheck;
    uint8_t VersionUser[32];
    uint64_t KdDebuggerDataBlock;
    WinDumpPhyMemDesc64 PhysicalMemoryBlock;
    uint8_t ContextBuffer[3000];
    WinDumpExceptionRecord Exception;
    uint32_t DumpType;
    uint32_t unused1;
    uint64_t RequiredDumpSpace;
    uint64_t SystemTime;
    char Comment[128];
    uint64_t SystemUpTime;
    uint32_t MiniDumpFields;
    uint32_t SecondaryDataState;
    uint32_t ProductType;
    uint32_t SuiteMask;
    uint32_t WriterStatus;
    uint8_t unused2;
    uint8_t KdSecondaryVersion;
    uint8_t reserved[4018];
} WinDumpHeader64;

_Static_assert(sizeof(WinDumpPhyMemDesc64) == 704, "PhysicalMemoryBlock64");
_Static_assert(sizeof(WinDumpExceptionRecord) == 152, "EXCEPTION_RECORD64");
_Static_assert(sizeof(WinBugcheck64) == 40, "bugcheck block 64");
_Static_assert(sizeof(WinDumpHeader64) == WIN_DUMP_HDR64_SIZE, "DUMP_HEADER64");
_Static_assert(offsetof(WinDumpHeader64, DirectoryTableBase) == 0x10, "DTB64");
_Static_assert(offsetof(WinDumpHeader64, PfnDatabase) == 0x18, "PfnDatabase64");
_Static_assert(offsetof(WinDumpHeader64, NumberProcessors) == 0x34, "nproc64");
_Static_assert(offsetof(WinDumpHeader64, Bugcheck) == 0x38, "BugcheckCode64");
_Static_assert(offsetof(WinDumpHeader64, VersionUser) == 0x60, "VersionUser64");
_Static_assert(offsetof(WinDumpHeader64, KdDebuggerDataBlock) == 0x80, "KDBG64");
_Static_assert(offsetof(WinDumpHeader64, PhysicalMemoryBlock) == 0x88, "PMB64");
_Static_assert(offsetof(WinDumpHeader64, PhysicalMemoryBlock.Run) == 0x98, "Run64");
_Static_assert(offsetof(WinDumpHeader64, ContextBuffer) == 0x348, "ContextBuffer64");
_Static_assert(offsetof(WinDumpHeader64, Exception) == 0xf00, "Exception64");
_Static_assert(offsetof(WinDumpHeader64, DumpType) == 0xf98, "DumpType64");
_Static_assert(offsetof(WinDumpHeader64, unused1) == 0xf9c, "unused1 64");
_Static_assert(offsetof(WinDumpHeader64, RequiredDumpSpace) == 0xfa0, "RDS64");
_Static_assert(offsetof(WinDumpHeader64, SystemTime) == 0xfa8, "SystemTime64");
_Static_assert(offsetof(WinDumpHeader64, Comment) == 0xfb0, "Comment64");
_Static_assert(offsetof(WinDumpHeader64, SystemUpTime) == 0x1030, "SystemUpTime64");
_Static_assert(offsetof(WinDumpHeader64, unused2) == 0x104c, "unused2 64");
_Static_assert(offsetof(WinDumpHeader64, reserved) == 0x104e, "reserved64");

typedef struct __attribute__((packed)) WinDumpPhyMemRun32 {
    uint32_t BasePage;
    uint32_t PageCount;
} WinDumpPhyMemRun32;

typedef struct __attribute__((packed)) WinDumpPhyMemDesc32 {
    uint32_t NumberOfRuns;
    uint32_t NumberOfPages;
    WinDumpPhyMemRun32 Run[WIN_DUMP_RUNS32];
    uint8_t unused[4];    /* padding inside Windows' 700-byte block */
} WinDumpPhyMemDesc32;

typedef struct __attribute__((packed)) WinBugcheck32 {
    uint32_t BugcheckCode;
    uint32_t BugcheckParameter[4];
} WinBugcheck32;

typedef struct __attribute__((packed)) WinDumpHeader32 {
    char Signature[4];
    char ValidDump[4];
    uint32_t MajorVersion;
    uint32_t MinorVersion;
    uint32_t DirectoryTableBase;
    uint32_t PfnDatabase;
    uint32_t PsLoadedModuleList;
    uint32_t PsActiveProcessHead;
    uint32_t MachineImageType;
    uint32_t NumberProcessors;
    WinBugcheck32 Bugcheck;
    uint8_t VersionUser[32];
    uint8_t reserved0[4];
    uint32_t KdDebuggerDataBlock;
    WinDumpPhyMemDesc32 PhysicalMemoryBlock;
    uint8_t reserved1[3200];
    /* Windows' LARGE_INTEGER: QEMU patches the low half only. */
    uint32_t RequiredDumpSpace;
    uint32_t RequiredDumpSpaceHigh;
    uint8_t reserved2[88];
} WinDumpHeader32;

_Static_assert(sizeof(WinDumpPhyMemDesc32) == 700, "PhysicalMemoryBlock32");
_Static_assert(sizeof(WinBugcheck32) == 20, "bugcheck block 32");
_Static_assert(sizeof(WinDumpHeader32) == WIN_DUMP_HDR32_SIZE, "DUMP_HEADER32");
_Static_assert(offsetof(WinDumpHeader32, DirectoryTableBase) == 0x10, "DTB32");
_Static_assert(offsetof(WinDumpHeader32, PfnDatabase) == 0x14, "PfnDatabase32");
_Static_assert(offsetof(WinDumpHeader32, NumberProcessors) == 0x24, "nproc32");
_Static_assert(offsetof(WinDumpHeader32, Bugcheck) == 0x28, "BugcheckCode32");
_Static_assert(offsetof(WinDumpHeader32, VersionUser) == 0x3c, "VersionUser32");
_Static_assert(offsetof(WinDumpHeader32, KdDebuggerDataBlock) == 0x60, "KDBG32");
_Static_assert(offsetof(WinDumpHeader32, PhysicalMemoryBlock) == 0x64, "PMB32");
_Static_assert(offsetof(WinDumpHeader32, PhysicalMemoryBlock.Run) == 0x6c, "Run32");
_Static_assert(offsetof(WinDumpHeader32, reserved1) == 0x320, "reserved1 32");
_Static_assert(offsetof(WinDumpHeader32, RequiredDumpSpace) == 0xfa0, "RDS32");

/* Windows' x64 CONTEXT. */
typedef struct __attribute__((packed)) WinContext64 {
    uint64_t PHome[6];
    uint32_t ContextFlags;
    uint32_t MxCsr;
    uint16_t SegCs, SegDs, SegEs, SegFs, SegGs, SegSs;
    uint32_t EFlags;
    uint64_t Dr0, Dr1, Dr2, Dr3, Dr6, Dr7;
    uint64_t Rax, Rcx, Rdx, Rbx, Rsp, Rbp, Rsi, Rdi;
    uint64_t R8, R9, R10, R11, R12, R13, R14, R15;
    uint64_t Rip;
    uint8_t FltSave[512];          /* XSAVE_FORMAT; only its MxCsr is set */
    uint8_t VectorRegister[26 * 16];
    uint64_t VectorControl;
    uint64_t DebugControl;
    uint64_t LastBranchToRip;
    uint64_t LastBranchFromRip;
    uint64_t LastExceptionToRip;
    uint64_t LastExceptionFromRip;
} WinContext64;

#define WIN_CTX64_FLTSAVE_MXCSR 0x18   /* XSAVE_FORMAT.MxCsr */

_Static_assert(sizeof(WinContext64) == 1232, "CONTEXT x64");
_Static_assert(offsetof(WinContext64, ContextFlags) == 0x30, "ContextFlags64");
_Static_assert(offsetof(WinContext64, SegCs) == 0x38, "SegCs64");
_Static_assert(offsetof(WinContext64, EFlags) == 0x44, "EFlags64");
_Static_assert(offsetof(WinContext64, Dr0) == 0x48, "Dr0 64");
_Static_assert(offsetof(WinContext64, Rax) == 0x78, "Rax64");
_Static_assert(offsetof(WinContext64, Rip) == 0xf8, "Rip64");
_Static_assert(offsetof(WinContext64, FltSave) == 0x100, "FltSave64");
_Static_assert(offsetof(WinContext64, VectorRegister) == 0x300, "VectorRegister64");
_Static_assert(offsetof(WinContext64, VectorControl) == 0x4a0, "VectorControl64");

/* Windows' x86 CONTEXT (716 bytes). */
typedef struct __attribute__((packed)) WinContext32 {
    uint32_t ContextFlags;
    uint32_t Dr0, Dr1, Dr2, Dr3, Dr6, Dr7;
    uint8_t FloatSave[112];
    uint32_t SegGs, SegFs, SegEs, SegDs;
    uint32_t Edi, Esi, Ebx, Edx, Ecx, Eax;
    uint32_t Ebp, Eip, SegCs, EFlags, Esp, SegSs;
    uint8_t ExtendedRegisters[512];
} WinContext32;

/*
 * QEMU declares its x86 CONTEXT 16-aligned, so it saves and writes 720
 * bytes: the 716 of the structure and 4 zero bytes after it.
 */
#define WIN_CTX32_QEMU_SIZE 720

_Static_assert(sizeof(WinContext32) == 716, "CONTEXT x86");
_Static_assert(offsetof(WinContext32, FloatSave) == 0x1c, "FloatSave32");
_Static_assert(offsetof(WinContext32, SegGs) == 0x8c, "SegGs32");
_Static_assert(offsetof(WinContext32, Edi) == 0x9c, "Edi32");
_Static_assert(offsetof(WinContext32, Ebp) == 0xb4, "Ebp32");
_Static_assert(offsetof(WinContext32, SegSs) == 0xc8, "SegSs32");
_Static_assert(offsetof(WinContext32, ExtendedRegisters) == 0xcc, "ExtRegs32");

#endif

# Build the station for Windows x64: the PyInstaller one-folder program (installer\station.spec, the
# spec shared with Linux) and the Inno Setup installer (installer\windows\station.iss).
#
# Run on a Windows 10/11 x64 build machine with Python 3.11 (python.org, "py" launcher) and Inno
# Setup 6 (ISCC.exe) installed, from a PowerShell in the repository root:
#
#   powershell -ExecutionPolicy Bypass -File installer\windows\build_windows.ps1 -TorchIndexUrl <index>
#   powershell -ExecutionPolicy Bypass -File installer\windows\build_windows.ps1 -NoTorch
#
# Torch on Windows: the torch wheel on PyPI is a CPU build. For a line PC with an NVIDIA GPU pass
# -TorchIndexUrl with PyTorch's own wheel index for CUDA 13.0 (the "cu130" index the install selector
# on PyTorch's web site names); its torch wheel brings the CUDA libraries inside. -NoTorch builds
# the lite program (variation model, camera stack, ONNX Runtime), without PatchCore and the autoencoder.
#
# NOT VERIFIED: written and reviewed on Linux; no Windows machine was available to run it. See
# installer\README.md ("What was verified where").
[CmdletBinding()]
param(
    [string]$Python = "py -3.11",
    [string]$TorchIndexUrl = "",
    [switch]$NoTorch,
    [switch]$SkipInstaller,
    [string]$Iscc = "${env:ProgramFiles(x86)}\Inno Setup 6\ISCC.exe"
)
$ErrorActionPreference = "Stop"
$Repo = (Resolve-Path "$PSScriptRoot\..\..").Path
Set-Location $Repo
$Start = Get-Date
function Step($text) { Write-Host ("`n== {0} ({1:n0} s)" -f $text, ((Get-Date) - $Start).TotalSeconds) }
function Run($exe, [string[]]$arguments) {
    & $exe @arguments
    if ($LASTEXITCODE -ne 0) { throw "$exe $($arguments -join ' ') failed with exit code $LASTEXITCODE" }
}

$Version = (Select-String -Path station\__init__.py -Pattern '^__version__ = "(.*)"').Matches[0].Groups[1].Value
$Suffix = if ($NoTorch) { "-lite" } else { "" }
$Name = "station-$Version-windows-x64$Suffix"
$Out = Join-Path $Repo "dist\$Name"
$Work = Join-Path $Repo ("build\pyinstaller-win" + $Suffix)
$Venv = Join-Path $Repo "build\venv-installer-win"
if (-not $NoTorch -and -not $TorchIndexUrl) {
    throw "give -TorchIndexUrl (PyTorch's CUDA 13.0 wheel index) for the GPU build, or -NoTorch for the lite build"
}

Step "build venv $Venv"
if (-not (Test-Path "$Venv\Scripts\python.exe")) {
    $py = $Python.Split(" ")
    Run $py[0] ($py[1..($py.Length - 1)] + @("-m", "venv", $Venv))
}
$Py = "$Venv\Scripts\python.exe"
Run $Py @("-m", "pip", "install", "--quiet", "--upgrade", "pip")
Run $Py @("-m", "pip", "install", "--quiet", "-r", "installer\requirements-build.txt")

Step "runtime packages (requirements.lock without the Linux-only CUDA wheels)"
# nvidia-*, cuda-* and triton are the Linux CUDA stack; on Windows torch's CUDA wheel carries its own.
$skip = '^(pytest|pytest-qt|pytest-timeout|ruff|import-linter|grimp|triton|nvidia-[a-z0-9-]+|cuda-[a-z-]+|torch|torchvision)=='
if ($NoTorch) { $skip = $skip.Replace(')==', '|sympy|mpmath|networkx|onnxscript|onnx-ir)==') }
$Req = Join-Path $Repo "build\requirements-windows.txt"
Get-Content requirements.lock | Where-Object { $_ -notmatch $skip } | Set-Content -Encoding ascii $Req
Run $Py @("-m", "pip", "install", "--quiet", "-r", $Req)
if (-not $NoTorch) {
    $pins = Get-Content requirements.lock | Where-Object { $_ -match '^(torch|torchvision)==' }
    Run $Py (@("-m", "pip", "install", "--quiet", "--index-url", $TorchIndexUrl) + $pins)
}
Run $Py @("-c", "import PySide6.QtWidgets, cv2, onnxruntime, harvesters.core, genicam.genapi, scipy, safetensors, pyqtgraph; print('runtime packages import')")

Step "PyInstaller -> $Out\station"
if (Test-Path $Out) { Remove-Item -Recurse -Force $Out }
$env:STATION_BUNDLE_TORCH = if ($NoTorch) { "0" } else { "1" }
Run $Py @("-m", "PyInstaller", "--noconfirm", "--log-level", "WARN", "--distpath", $Out, "--workpath", $Work,
          "installer\station.spec")
Copy-Item resources\station.ico "$Out\station\station.ico"
Copy-Item installer\README.md "$Out\README.md"

Step "selftest of the built program"
$env:QT_QPA_PLATFORM = "offscreen"
$env:STATION_HOME = Join-Path $Repo "build\selftest-home-win"
Run "$Out\station\station.exe" @("selftest")
Remove-Item Env:QT_QPA_PLATFORM, Env:STATION_HOME

if (-not $SkipInstaller) {
    Step "Inno Setup -> dist\$Name-setup.exe"
    if (-not (Test-Path $Iscc)) { throw "Inno Setup 6 compiler not found at $Iscc (install Inno Setup 6 or pass -Iscc)" }
    Run $Iscc @("/Qp", "/DAppVersion=$Version", "/DSourceDir=$Out\station", "/DOutputDir=$Repo\dist",
                "/DOutputName=$Name-setup", "installer\windows\station.iss")
}
$size = (Get-ChildItem -Recurse -File "$Out\station" | Measure-Object -Property Length -Sum).Sum / 1MB
Step ("done: {0} ({1:n0} MB)" -f $Out, $size)

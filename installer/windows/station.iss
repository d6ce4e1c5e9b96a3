; Inno Setup 6 script: installs the PyInstaller program folder (dist\station-...-windows-x64\station)
; on a Windows x64 line PC, with start-menu and desktop icons, an optional offline bundle (backbone
; weights imported through `station weights import`, recipes placed in the station's models folder),
; and a self-test at the end.
;
; Compiled by installer\windows\build_windows.ps1, or by hand:
;   ISCC /DAppVersion=0.1.0 /DSourceDir=dist\station-0.1.0-windows-x64\station installer\windows\station.iss
;
; Offline bundle, interactively (the "Offline bundle" page) or silently:
;   station-0.1.0-windows-x64-setup.exe /SILENT /WEIGHTS="D:\wide_resnet50_2-95faca4d.pth" /RECIPE="D:\models\bottle"
;
; NOT VERIFIED: no Windows machine or Inno Setup compiler was available where this was written.

#ifndef AppVersion
  #define AppVersion "0.0.0"
#endif
#ifndef SourceDir
  #define SourceDir "..\..\dist\station-" + AppVersion + "-windows-x64\station"
#endif
#ifndef OutputDir
  #define OutputDir "..\..\dist"
#endif
#ifndef OutputName
  #define OutputName "station-" + AppVersion + "-windows-x64-setup"
#endif

[Setup]
AppId={{5C1D4B8E-7F3A-4E2B-9B6D-2A8F0C3E71D4}
AppName=Inspection station
AppVersion={#AppVersion}
AppPublisher=Inspection station project
DefaultDirName={autopf}\Inspection station
DefaultGroupName=Inspection station
DisableProgramGroupPage=yes
; administrators install for all users; others may install for themselves only
PrivilegesRequired=admin
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir={#OutputDir}
OutputBaseFilename={#OutputName}
SetupIconFile=..\..\resources\station.ico
UninstallDisplayIcon={app}\station.ico
; the torch + CUDA program is several GB: fast compression, and disk spanning past Inno's 4 GB
; single-file limit (setup.exe plus setup-N.bin files, kept together)
Compression=lzma2/fast
SolidCompression=no
DiskSpanning=yes
DiskSliceSize=max
WizardStyle=modern

[Tasks]
Name: "desktopicon"; Description: "Put an icon on the desktop"; GroupDescription: "Icons:"

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs
Source: "..\..\resources\station.ico"; DestDir: "{app}"; Flags: ignoreversion

[Icons]
Name: "{autoprograms}\Inspection station"; Filename: "{app}\station-gui.exe"; IconFilename: "{app}\station.ico"
Name: "{autoprograms}\Inspection station self-test"; Filename: "{cmd}"; Parameters: "/k ""{app}\station.exe"" selftest"; IconFilename: "{app}\station.ico"
Name: "{autodesktop}\Inspection station"; Filename: "{app}\station-gui.exe"; IconFilename: "{app}\station.ico"; Tasks: desktopicon

[Run]
Filename: "{cmd}"; Parameters: "/k ""{app}\station.exe"" selftest"; Description: "Check the installation now (station selftest)"; Flags: postinstall nowait skipifsilent
Filename: "{app}\station-gui.exe"; Description: "Start the inspection station"; Flags: postinstall nowait skipifsilent unchecked

[UninstallDelete]
; only the program; recipes, results and weights live in the station's data folder and stay
Type: filesandordirs; Name: "{app}"

[Code]
var
  OfflinePage: TInputFileWizardPage;
  RecipePage: TInputDirWizardPage;

procedure InitializeWizard;
begin
  OfflinePage := CreateInputFilePage(wpSelectTasks, 'Offline bundle (optional)',
    'Backbone weights for PatchCore on a PC without internet',
    'Choose torchvision''s weights file (e.g. wide_resnet50_2-95faca4d.pth) copied from another PC, or leave empty.');
  OfflinePage.Add('Weights file:', 'PyTorch weights (*.pth)|*.pth|All files|*.*', '.pth');
  OfflinePage.Values[0] := ExpandConstant('{param:WEIGHTS|}');
  RecipePage := CreateInputDirPage(OfflinePage.ID, 'Offline bundle (optional)', 'A taught part (recipe)',
    'Choose a recipe folder (a part folder holding v0001, ...) to place into the station''s models folder, or leave empty.',
    False, '');
  RecipePage.Add('Recipe folder:');
  RecipePage.Values[0] := ExpandConstant('{param:RECIPE|}');
end;

function HasWeights: Boolean;
begin
  Result := Trim(OfflinePage.Values[0]) <> '';
end;

function WeightsFile(Param: String): String;
begin
  Result := Trim(OfflinePage.Values[0]);
end;

function NextButtonClick(CurPageID: Integer): Boolean;
var
  Dir: String;
begin
  Result := True;
  if (CurPageID = OfflinePage.ID) and HasWeights and not FileExists(WeightsFile('')) then begin
    MsgBox('The weights file ' + WeightsFile('') + ' does not exist.', mbError, MB_OK);
    Result := False;
  end;
  Dir := Trim(RecipePage.Values[0]);
  if (CurPageID = RecipePage.ID) and (Dir <> '') and not FileExists(AddBackslash(Dir) + 'recipe.json')
     and not FileExists(AddBackslash(Dir) + 'v0001\recipe.json') then begin
    MsgBox(Dir + ' is not a recipe folder (no recipe.json, no v0001\recipe.json).', mbError, MB_OK);
    Result := False;
  end;
end;

procedure ImportWeights;
var
  Code: Integer;
begin
  { the station's own import, which checks torchvision's published hash; refuses other files }
  WizardForm.StatusLabel.Caption := 'Importing the backbone weights...';
  if not Exec(ExpandConstant('{app}\station.exe'), 'weights import "' + WeightsFile('') + '"', '', SW_HIDE,
              ewWaitUntilTerminated, Code) or (Code <> 0) then
    SuppressibleMsgBox('The weights file ' + WeightsFile('') + ' was not imported (exit code ' + IntToStr(Code) + '). ' +
           'It is not torchvision''s published file, or it is damaged. Run' + #13#10 +
           '  station.exe weights import "' + WeightsFile('') + '"' + #13#10 +
           'in the installation folder to see why.', mbError, MB_OK, IDOK);
end;

procedure CurStepChanged(CurStep: TSetupStep);
var
  Src, Part, Dest: String;
  Code: Integer;
begin
  if CurStep <> ssPostInstall then Exit;
  if HasWeights then ImportWeights;
  Src := RemoveBackslashUnlessRoot(Trim(RecipePage.Values[0]));
  if Src = '' then Exit;
  { the station's data folder: %LOCALAPPDATA%\station (see station/app/paths.py); a version folder
    goes under its part folder's name }
  if FileExists(AddBackslash(Src) + 'recipe.json') then begin
    Part := ExtractFileName(ExtractFileDir(Src));
    Dest := ExpandConstant('{localappdata}\station\models\') + Part + '\' + ExtractFileName(Src);
  end else begin
    Part := ExtractFileName(Src);
    Dest := ExpandConstant('{localappdata}\station\models\') + Part;
  end;
  { robocopy /E copies the tree; /XC /XN /XO never replaces a version already there. Exit codes below 8 mean success. }
  if not Exec(ExpandConstant('{sys}\robocopy.exe'), '"' + Src + '" "' + Dest + '" /E /XC /XN /XO /NJH /NJS /NP',
              '', SW_HIDE, ewWaitUntilTerminated, Code) or (Code >= 8) then
    SuppressibleMsgBox('The recipe could not be copied to ' + Dest + ' (robocopy exit code ' + IntToStr(Code) + ').',
                       mbError, MB_OK, IDOK);
end;

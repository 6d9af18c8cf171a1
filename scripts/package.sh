#!/usr/bin/env bash
# package.sh - builds kiln-<version>-linux-x64.tar.gz: a self-contained kiln (no .NET needed on the node),
# the native libraries and plugins, the systemd unit and default configuration, the Slurm batch script,
# prolog and epilog, the docs, and install.sh, which puts them under /opt/kiln and /etc/kiln.
# Usage: scripts/package.sh [--out DIR] [--no-build]   (default DIR: build/package; prints the tarball's path)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

out=build/package
build=1
while (($#)); do
  case $1 in
    --out) out=${2:?--out needs a folder}; shift 2 ;;
    --no-build) build=0; shift ;;
    *) echo "package: unknown argument $1 (usage: scripts/package.sh [--out DIR] [--no-build])" >&2; exit 2 ;;
  esac
done

# The native libraries: built here unless asked not to (scripts/build.sh builds them the same way).
if ((build)); then
  cmake -S . -B build/cmake -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build/cmake -j "$(nproc)" >/dev/null
fi
[[ -f build/lib/libkiln.so ]] || { echo "package: build/lib/libkiln.so is missing (run scripts/build.sh)" >&2; exit 2; }

version=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' Directory.Build.props | head -1)
[[ -n $version ]] || { echo "package: no <Version> in Directory.Build.props" >&2; exit 2; }
name=kiln-$version-linux-x64
mkdir -p "$out"
out=$(cd "$out" && pwd)
stage=$out/$name
rm -rf "$stage"
mkdir -p "$stage"/{bin,lib,slurm,systemd,etc,docs}

# Self-contained: the .NET runtime travels in bin/; untrimmed, as YAML, CSV and the plots use reflection.
dotnet publish managed/Kiln.Cli/Kiln.Cli.csproj -c Release -r linux-x64 --self-contained true \
  -p:PublishTrimmed=false -p:UseAppHost=true -o "$stage/bin" --nologo -v quiet
# The loader looks in bin/../lib (KilnLibrary); the plugins sit beside libkiln.so.
cp -a build/lib/*.so "$stage/lib/"
cp scripts/slurm/kiln-burn.sbatch scripts/slurm/kiln-pairs.sbatch scripts/slurm/healthcheck.sh scripts/slurm/prolog.sh scripts/slurm/epilog.sh "$stage/slurm/"
cp scripts/systemd/kiln.service "$stage/systemd/"
cp scripts/systemd/kiln.yaml "$stage/etc/"
cp README.md "$stage/"
cp docs/*.md "$stage/docs/"

cat > "$stage/install.sh" <<'EOF'
#!/usr/bin/env bash
# install.sh - installs this kiln under PREFIX (default /opt/kiln) and its configuration in /etc/kiln
# (an existing /etc/kiln/kiln.yaml is kept), the unit in /etc/systemd/system. Run as root from the
# unpacked folder. Usage: ./install.sh [--prefix DIR] [--etc DIR] [--no-systemd]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
prefix=/opt/kiln etc=/etc/kiln systemd=1
while (($#)); do
  case $1 in
    --prefix) prefix=$2; shift 2 ;;
    --etc) etc=$2; shift 2 ;;
    --no-systemd) systemd=0; shift ;;
    *) echo "install: unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$prefix" "$etc"
# A fresh copy of the program (old files of an older version would otherwise linger in bin/).
rm -rf "$prefix/bin" "$prefix/lib"
cp -a "$here/bin" "$here/lib" "$here/slurm" "$here/systemd" "$here/docs" "$here/README.md" "$prefix/"
[[ -f $etc/kiln.yaml ]] || cp "$here/etc/kiln.yaml" "$etc/kiln.yaml"
if ((systemd)) && [[ -d /etc/systemd/system ]]; then
  cp "$here/systemd/kiln.service" /etc/systemd/system/kiln.service
  command -v systemctl >/dev/null 2>&1 && systemctl daemon-reload 2>/dev/null || true
fi
"$prefix/bin/kiln" --version
echo "install: kiln in $prefix (bin/kiln), configuration in $etc/kiln.yaml; systemctl enable --now kiln to start the service"
EOF
chmod +x "$stage/install.sh" "$stage/bin/kiln" "$stage/slurm/"*

tar -C "$out" -czf "$out/$name.tar.gz" "$name"
echo "$out/$name.tar.gz"

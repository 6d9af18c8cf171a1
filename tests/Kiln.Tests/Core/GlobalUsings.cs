// NUnit for every test file of the project (the csproj has no <Using> for it).
global using NUnit.Framework;
